// RUN: mlc-opt %s -p 'mlc-tile{order="d1,r0,d0" unroll=d0},mlc-lower-loops,canonicalize,cse' | filecheck %s

// unroll(d0) on the rows, inside the reduction: a register tile. The four partial sums of a
// column are values carried through the reduction loop (registers in C), each loaded operand
// of the column (b[k, j]) is loaded once for all four, and the sums are stored at the end.
func.func @matmul(%a: tensor<4x5xf32>, %b: tensor<5x6xf32>) -> tensor<4x6xf32> {
  %y = ix.compute sum(r0: 5) (%a[d0, r0], %b[r0, d1]) : (tensor<4x5xf32>, tensor<5x6xf32>) -> tensor<4x6xf32> {
  ^bb0(%p: f32, %q: f32):
    %m = arith.mulf %p, %q : f32
    ix.yield %m : f32
  }
  func.return %y : tensor<4x6xf32>
}
// CHECK-LABEL: func.func @matmul
// CHECK-DAG:     %[[ZERO:.*]] = arith.constant 0.000000e+00 : f32
// CHECK-DAG:     %[[R1:.*]] = arith.constant 1 : index
// CHECK-DAG:     %[[R2:.*]] = arith.constant 2 : index
// CHECK-DAG:     %[[R3:.*]] = arith.constant 3 : index
// CHECK:         scf.for %[[J:[0-9]+]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NEXT:      %[[S0:.*]], %[[S1:.*]], %[[S2:.*]], %[[S3:.*]] = scf.for %[[K:[0-9]+]] = %{{.*}} to %{{.*}} step %{{.*}} iter_args(%[[A0:.*]] = %[[ZERO]], %[[A1:.*]] = %[[ZERO]], %[[A2:.*]] = %[[ZERO]], %[[A3:.*]] = %[[ZERO]]) -> (f32, f32, f32, f32) {
// CHECK-NEXT:        %[[X0:.*]] = memref.load %a[%{{.*}}, %[[K]]] : memref<4x5xf32>
// CHECK-NEXT:        %[[B:.*]] = memref.load %b[%[[K]], %[[J]]] : memref<5x6xf32>
// CHECK-NEXT:        %[[N0:.*]] = math.fma %[[X0]], %[[B]], %[[A0]] : f32
// CHECK-NEXT:        %[[X1:.*]] = memref.load %a[%[[R1]], %[[K]]] : memref<4x5xf32>
// CHECK-NEXT:        %[[N1:.*]] = math.fma %[[X1]], %[[B]], %[[A1]] : f32
// CHECK-NEXT:        %[[X2:.*]] = memref.load %a[%[[R2]], %[[K]]] : memref<4x5xf32>
// CHECK-NEXT:        %[[N2:.*]] = math.fma %[[X2]], %[[B]], %[[A2]] : f32
// CHECK-NEXT:        %[[X3:.*]] = memref.load %a[%[[R3]], %[[K]]] : memref<4x5xf32>
// CHECK-NEXT:        %[[N3:.*]] = math.fma %[[X3]], %[[B]], %[[A3]] : f32
// CHECK-NEXT:        scf.yield %[[N0]], %[[N1]], %[[N2]], %[[N3]] : f32, f32, f32, f32
// CHECK-NEXT:      }
// CHECK-NEXT:      memref.store %[[S0]], %{{.*}}[%{{.*}}, %[[J]]] : memref<4x6xf32>
// CHECK-NEXT:      memref.store %[[S1]], %{{.*}}[%[[R1]], %[[J]]] : memref<4x6xf32>
// CHECK-NEXT:      memref.store %[[S2]], %{{.*}}[%[[R2]], %[[J]]] : memref<4x6xf32>
// CHECK-NEXT:      memref.store %[[S3]], %{{.*}}[%[[R3]], %[[J]]] : memref<4x6xf32>
