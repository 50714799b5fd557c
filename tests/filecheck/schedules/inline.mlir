// RUN: mlc-opt %s -p 'mlc-fuse{ops=0 inline=true}' | filecheck %s --check-prefix=ATTR
// RUN: mlc-opt %s -p 'mlc-fuse{ops=0 inline=true},mlc-lower-loops,canonicalize,cse' | filecheck %s

// inline on the first op: it has no loops or buffer of its own; its reader computes it at
// every point it reads it, through the composed index (here transposed: t[i, j] = x[j, i]).
func.func @chain(%x: tensor<3x4xf32>) -> tensor<4x3xf32> {
  %t = ix.compute (%x[d1, d0]) : (tensor<3x4xf32>) -> tensor<4x3xf32> {
  ^bb0(%a: f32):
    %e = math.exp %a : f32
    ix.yield %e : f32
  }
  %y = ix.compute (%t[d0, d1]) : (tensor<4x3xf32>) -> tensor<4x3xf32> {
  ^bb0(%b: f32):
    %c = arith.constant 2.000000e+00 : f32
    %m = arith.mulf %b, %c : f32
    ix.yield %m : f32
  }
  func.return %y : tensor<4x3xf32>
}
// ATTR: %t = ix.compute (%x[d1, d0]) : (tensor<3x4xf32>) -> tensor<4x3xf32> attributes {mlc.schedule = #ix.schedule<inline>}

// CHECK-LABEL: func.func @chain
// CHECK-NOT:     memref.alloc
// CHECK:         scf.for %[[I:[0-9]+]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NEXT:      scf.for %[[J:[0-9]+]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NEXT:        %[[X:.*]] = memref.load %x[%[[J]], %[[I]]] : memref<3x4xf32>
// CHECK-NEXT:        %[[E:.*]] = math.exp %[[X]] : f32
// CHECK-NEXT:        %[[M:.*]] = arith.mulf %[[E]], %{{.*}} : f32
// CHECK-NEXT:        memref.store %[[M]], %{{.*}}[%[[I]], %[[J]]] : memref<4x3xf32>
// CHECK:         } {mlc.nest = "ix.compute -> 4x3xf32"}
// CHECK-NOT:     scf.for
