// RUN: mlc-opt %s -p 'mlc-tile{order="d0,r0,d1"},mlc-lower-loops,canonicalize,cse' | filecheck %s
// RUN: mlc-opt %s -p 'mlc-tile{split="d1:3" order="d1o,r0,d0,d1i"},mlc-lower-loops,canonicalize,cse' | filecheck %s --check-prefix=OUT

// order(d0, r0, d1): the output loop d1 runs inside the reduction, so each row's partial sums
// live in a local array of the row's 6 elements (the tile): zeroed, accumulated with one fused
// multiply-add per point in the reduction order, then stored.
func.func @matmul(%a: tensor<4x5xf32>, %b: tensor<5x6xf32>) -> tensor<4x6xf32> {
  %y = ix.compute sum(r0: 5) (%a[d0, r0], %b[r0, d1]) : (tensor<4x5xf32>, tensor<5x6xf32>) -> tensor<4x6xf32> {
  ^bb0(%p: f32, %q: f32):
    %m = arith.mulf %p, %q : f32
    ix.yield %m : f32
  }
  func.return %y : tensor<4x6xf32>
}
// CHECK-LABEL: func.func @matmul
// CHECK:         scf.for %[[I:[0-9]+]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NEXT:      %[[ACC:.*]] = memref.alloca() {alignment = 64 : i64} : memref<6xf32>
// CHECK-NEXT:      scf.for %[[J0:[0-9]+]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NEXT:        memref.store %{{.*}}, %[[ACC]][%[[J0]]] : memref<6xf32>
// CHECK-NEXT:      }
// CHECK-NEXT:      scf.for %[[K:[0-9]+]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NEXT:        scf.for %[[J:[0-9]+]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NEXT:          %[[OLD:.*]] = memref.load %[[ACC]][%[[J]]] : memref<6xf32>
// CHECK-NEXT:          %[[A:.*]] = memref.load %a[%[[I]], %[[K]]] : memref<4x5xf32>
// CHECK-NEXT:          %[[B:.*]] = memref.load %b[%[[K]], %[[J]]] : memref<5x6xf32>
// CHECK-NEXT:          %[[NEW:.*]] = math.fma %[[A]], %[[B]], %[[OLD]] : f32
// CHECK-NEXT:          memref.store %[[NEW]], %[[ACC]][%[[J]]] : memref<6xf32>
// CHECK:           scf.for %[[J1:[0-9]+]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NEXT:        %[[V:.*]] = memref.load %[[ACC]][%[[J1]]] : memref<6xf32>
// CHECK-NEXT:        memref.store %[[V]], %{{.*}}[%[[I]], %[[J1]]] : memref<4x6xf32>
// CHECK:         } {mlc.nest = "ix.compute sum(5) -> 4x6xf32: order(d0, r0, d1)"}

// With every row inside the reduction (a tile of 4 x 3 per column block, larger than the
// loops' registers would hold unrolled), the partial sums are kept in a local array too.
// OUT-LABEL: func.func @matmul
// OUT:         scf.for %{{.*}} = %{{.*}} to %{{.*}} step %{{.*}} {
// OUT-NEXT:      %[[ACC:.*]] = memref.alloca() {alignment = 64 : i64} : memref<4x3xf32>
// OUT:           memref.store %{{.*}}, %[[ACC]][%{{.*}}, %{{.*}}] : memref<4x3xf32>
// OUT:           scf.for %[[K:[0-9]+]] = %{{.*}} to %{{.*}} step %{{.*}} {
// OUT-NEXT:        scf.for %[[I:[0-9]+]] = %{{.*}} to %{{.*}} step %{{.*}} {
// OUT-NEXT:          scf.for %[[JI:[0-9]+]] = %{{.*}} to %{{.*}} step %{{.*}} {
// OUT-NEXT:            memref.load %[[ACC]][%[[I]], %[[JI]]] : memref<4x3xf32>
// OUT:                 math.fma
// OUT:         } {mlc.nest = "ix.compute sum(5) -> 4x6xf32: split(d1, 3), order(d1o, r0, d0, d1i)"}
