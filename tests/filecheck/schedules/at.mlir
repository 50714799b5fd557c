// RUN: mlc-opt %s -p 'mlc-tile{ops=1 split="d1:4"},mlc-fuse{ops=0 at=d1o},mlc-tile{ops=0 order="d0,d1,r0"},mlc-lower-loops,canonicalize,cse' | filecheck %s

// at(d1o) on a row-sum feeding an elementwise op: inside each iteration of the reader's loop
// d1o, the block of the producer that the loops below read (1 x 4 points at [i, 4 * j0]) is
// computed into a local buffer of that size, and the reader reads it there. No buffer of the
// producer's full size exists; the remainder block (2 points) is computed in its own copy.
func.func @scaled(%x: tensor<2x10x5xf32>) -> tensor<2x10xf32> {
  %s = ix.compute sum(r0: 5) (%x[d0, d1, r0]) : (tensor<2x10x5xf32>) -> tensor<2x10xf32> {
  ^bb0(%a: f32):
    ix.yield %a : f32
  }
  %y = ix.compute (%s[d0, d1]) : (tensor<2x10xf32>) -> tensor<2x10xf32> {
  ^bb0(%b: f32):
    %c = arith.constant 5.000000e-01 : f32
    %m = arith.mulf %b, %c : f32
    ix.yield %m : f32
  }
  func.return %y : tensor<2x10xf32>
}
// CHECK-LABEL: func.func @scaled
// CHECK-NOT:     memref.alloc()
// CHECK:         scf.for %[[I:[0-9]+]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NEXT:      scf.for %[[J:[0-9]+]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NEXT:        %[[BLOCK:.*]] = memref.alloca() {alignment = 64 : i64} : memref<1x4xf32>
// CHECK-NEXT:        scf.for %[[B:[0-9]+]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NEXT:          %[[S:.*]] = scf.for %[[R:[0-9]+]] = %{{.*}} to %{{.*}} step %{{.*}} iter_args
// CHECK:                 memref.load %x[%[[I]], %{{.*}}, %[[R]]] : memref<2x10x5xf32>
// CHECK:               memref.store %[[S]], %[[BLOCK]][%{{.*}}, %[[B]]] : memref<1x4xf32>
// CHECK:             scf.for %[[K:[0-9]+]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NEXT:          %[[V:.*]] = memref.load %[[BLOCK]][%{{.*}}, %[[K]]] : memref<1x4xf32>
// CHECK-NEXT:          arith.mulf %[[V]], %{{.*}} : f32
// CHECK:         %{{.*}} = memref.alloca() {alignment = 64 : i64} : memref<1x2xf32>
