// RUN: mlc-opt %s -p 'mlc-tile{func=relu_rows vectorize=d1},mlc-tile{func=negate vectorize=d0},mlc-tile{func=matmul order="d0,r0,d1" vectorize=d1},mlc-lower-loops{vector-bytes=16},canonicalize,cse' | filecheck %s

// vectorize(d1) with 4 lanes (16-byte vectors) on rows of 10: two vectors, then the last two
// iterations as a partial vector (a masked load and store of its first two lanes). The read
// along the row is a vector load, the per-row bias a scalar load broadcast to the lanes, the
// comparison and selection of relu are lanewise (vx).
func.func @relu_rows(%x: tensor<3x10xf32>, %b: tensor<3xf32>) -> tensor<3x10xf32> {
  %y = ix.compute (%x[d0, d1], %b[d0]) : (tensor<3x10xf32>, tensor<3xf32>) -> tensor<3x10xf32> {
  ^bb0(%v: f32, %c: f32):
    %s = arith.addf %v, %c : f32
    %z = arith.constant 0.000000e+00 : f32
    %gt = arith.cmpf ogt, %s, %z : f32
    %r = arith.select %gt, %s, %z : f32
    ix.yield %r : f32
  }
  func.return %y : tensor<3x10xf32>
}
// CHECK-LABEL: func.func @relu_rows
// CHECK:         scf.for %[[I:[0-9]+]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NEXT:      %[[V:.*]] = vector.load %x[%[[I]], %{{.*}}] : memref<3x10xf32>, vector<4xf32>
// CHECK-NEXT:      %[[B:.*]] = memref.load %b[%[[I]]] : memref<3xf32>
// CHECK-NEXT:      %[[BV:.*]] = vector.broadcast %[[B]] : f32 to vector<4xf32>
// CHECK-NEXT:      %[[S:.*]] = arith.addf %[[V]], %[[BV]] : vector<4xf32>
// CHECK-NEXT:      %[[ZV:.*]] = vector.broadcast %{{.*}} : f32 to vector<4xf32>
// CHECK-NEXT:      %[[GT:.*]] = vx.cmpf ogt, %[[S]], %[[ZV]] : vector<4xf32>
// CHECK-NEXT:      %[[R:.*]] = vx.select %[[GT]], %[[S]], %[[ZV]] : vector<4xf32>
// CHECK-NEXT:      vector.store %[[R]], %{{.*}}[%[[I]], %{{.*}}] : memref<3x10xf32>, vector<4xf32>
// CHECK:           vector.load %x[%[[I]], %{{.*}}] : memref<3x10xf32>, vector<4xf32>
// CHECK:           vector.store
// CHECK-NEXT:      %[[TWO:.*]] = vector.create_mask %{{.*}} : vector<4xi1>
// CHECK-NEXT:      vector.maskedload %x[%[[I]], %{{.*}}], %[[TWO]], %{{.*}} : memref<3x10xf32>, vector<4xi1>, vector<4xf32> into vector<4xf32>
// The store's mask is the load's: the lowering builds each pure op once where it dominates.
// CHECK:           vx.select
// CHECK-NEXT:      vector.maskedstore %{{.*}}[%[[I]], %{{.*}}], %[[TWO]], %{{.*}} : memref<3x10xf32>, vector<4xi1>, vector<4xf32>
// CHECK-NEXT:    }

// Nine iterations: two vectors, and the last one alone as a scalar.
func.func @negate(%x: tensor<9xf32>) -> tensor<9xf32> {
  %y = ix.compute (%x[d0]) : (tensor<9xf32>) -> tensor<9xf32> {
  ^bb0(%v: f32):
    %n = arith.negf %v : f32
    ix.yield %n : f32
  }
  func.return %y : tensor<9xf32>
}
// CHECK-LABEL: func.func @negate
// CHECK:         vector.load %x[%{{.*}}] {{.*}}: memref<9xf32>, vector<4xf32>
// CHECK:         vector.load %x[%{{.*}}] : memref<9xf32>, vector<4xf32>
// CHECK:         %[[LAST:.*]] = memref.load %x[%{{.*}}] : memref<9xf32>
// CHECK-NEXT:    %[[N:.*]] = arith.negf %[[LAST]] : f32
// CHECK-NEXT:    memref.store %[[N]], %{{.*}}[%{{.*}}] : memref<9xf32>
// CHECK-NOT:     vector.create_mask

// A vectorized row of a matmul, inside the reduction: the row's 8 outputs are two vector
// registers carried through the reduction; a[i, k] is broadcast, b[k, :] loaded as vectors,
// combined by vector fused multiply-adds.
func.func @matmul(%a: tensor<4x5xf32>, %b: tensor<5x8xf32>) -> tensor<4x8xf32> {
  %y = ix.compute sum(r0: 5) (%a[d0, r0], %b[r0, d1]) : (tensor<4x5xf32>, tensor<5x8xf32>) -> tensor<4x8xf32> {
  ^bb0(%p: f32, %q: f32):
    %m = arith.mulf %p, %q : f32
    ix.yield %m : f32
  }
  func.return %y : tensor<4x8xf32>
}
// CHECK-LABEL: func.func @matmul
// CHECK:         scf.for %[[I:[0-9]+]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NEXT:      %[[ZERO:.*]] = vector.broadcast %{{.*}} : f32 to vector<4xf32>
// CHECK-NEXT:      %[[S0:.*]], %[[S1:.*]] = scf.for %[[K:[0-9]+]] = %{{.*}} to %{{.*}} step %{{.*}} iter_args(%[[A0:.*]] = %[[ZERO]], %[[A1:.*]] = %[[ZERO]]) -> (vector<4xf32>, vector<4xf32>) {
// CHECK-NEXT:        %[[X:.*]] = memref.load %a[%[[I]], %[[K]]] : memref<4x5xf32>
// CHECK-NEXT:        %[[B0:.*]] = vector.load %b[%[[K]], %{{.*}}] : memref<5x8xf32>, vector<4xf32>
// CHECK-NEXT:        %[[XV:.*]] = vector.broadcast %[[X]] : f32 to vector<4xf32>
// CHECK-NEXT:        %[[N0:.*]] = math.fma %[[XV]], %[[B0]], %[[A0]] : vector<4xf32>
// CHECK-NEXT:        %[[B1:.*]] = vector.load %b[%[[K]], %{{.*}}] : memref<5x8xf32>, vector<4xf32>
// CHECK-NEXT:        %[[N1:.*]] = math.fma %[[XV]], %[[B1]], %[[A1]] : vector<4xf32>
// CHECK-NEXT:        scf.yield %[[N0]], %[[N1]] : vector<4xf32>, vector<4xf32>
// CHECK-NEXT:      }
// CHECK-NEXT:      vector.store %[[S0]], %{{.*}}[%[[I]], %{{.*}}] : memref<4x8xf32>, vector<4xf32>
// CHECK-NEXT:      vector.store %[[S1]], %{{.*}}[%[[I]], %{{.*}}] : memref<4x8xf32>, vector<4xf32>
