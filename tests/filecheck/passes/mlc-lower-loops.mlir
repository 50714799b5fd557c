// RUN: mlc-opt %s -p mlc-lower-loops | filecheck %s

// A padded 1-D convolution (constants go once each to the start of the function): the read
// that can leave %x is clamped into it and its value replaced by the fill outside (branch-free), the filter read is not; the sum of products
// accumulates with a fused multiply-add; the returned tensor is written straight into the
// caller's output buffer.
func.func @conv1d(%x: tensor<8xf32>, %w: tensor<3xf32>) -> tensor<8xf32> {
  %y = ix.compute sum(r0: 3) (%x[d0 + r0 - 1], %w[r0]) : (tensor<8xf32>, tensor<3xf32>) -> tensor<8xf32> {
  ^bb0(%a: f32, %b: f32):
    %p = arith.mulf %a, %b : f32
    ix.yield %p : f32
  }
  func.return %y : tensor<8xf32>
}
// CHECK-LABEL: func.func @conv1d(%x: memref<8xf32>, %w: memref<3xf32>, %{{.*}}: memref<8xf32>) {
// CHECK:         %[[ZERO:.*]] = arith.constant 0.000000e+00 : f32
// CHECK:         scf.for %[[I:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK:           %[[ACC:.*]] = scf.for %[[R:.*]] = %{{.*}} to %{{.*}} step %{{.*}} iter_args(%[[A:.*]] = %[[ZERO]]) -> (f32) {
// CHECK:             %[[IN:.*]] = arith.cmpi ult, %[[IDX:.*]], %{{.*}} : index
// CHECK:             %[[LO:.*]] = arith.minsi %[[IDX]], %{{.*}} : index
// CHECK:             %[[CL:.*]] = arith.maxsi %[[LO]], %{{.*}} : index
// CHECK-NEXT:        %[[LOAD:.*]] = memref.load %x[%[[CL]]] : memref<8xf32>
// CHECK-NEXT:        %[[X:.*]] = arith.select %[[IN]], %[[LOAD]], %[[ZERO]] : f32
// CHECK-NEXT:        %[[W:.*]] = memref.load %w[%[[R]]] : memref<3xf32>
// CHECK-NEXT:        %[[SUM:.*]] = math.fma %[[X]], %[[W]], %[[A]] : f32
// CHECK-NEXT:        scf.yield %[[SUM]] : f32
// CHECK:           memref.store %[[ACC]], %{{.*}}[%[[I]]] : memref<8xf32>
// CHECK:         func.return

// A max reduction is maximumf(acc, value): it keeps the first maximum on ties and propagates
// NaN; a value that is not computed here is copied into its output buffer.
func.func @rowmax(%x: tensor<4x5xf64>) -> (tensor<4xf64>, tensor<4x5xf64>) {
  %y = ix.compute max(r0: 5) (%x[d0, r0]) : (tensor<4x5xf64>) -> tensor<4xf64> {
  ^bb0(%a: f64):
    ix.yield %a : f64
  }
  func.return %y, %x : tensor<4xf64>, tensor<4x5xf64>
}
// CHECK-LABEL: func.func @rowmax
// CHECK:         arith.constant 0xfff0000000000000 : f64
// CHECK:         %[[V:.*]] = memref.load %x[%{{.*}}, %{{.*}}] : memref<4x5xf64>
// CHECK-NEXT:    arith.maximumf %{{.*}}, %[[V]] : f64
// CHECK:         "memref.copy"(%x, %{{.*}}) : (memref<4x5xf64>, memref<4x5xf64>) -> ()

// Temporaries are allocated (the memory planner places them later); floor-mod of a possibly
// negative index is corrected to Python's sign convention.
func.func @temp(%x: tensor<6xf32>) -> tensor<6xf32> {
  %t = ix.compute (%x[d0]) : (tensor<6xf32>) -> tensor<6xf32> {
  ^bb0(%a: f32):
    ix.yield %a : f32
  }
  %y = ix.compute (%t[(d0 - 1) mod 6]) : (tensor<6xf32>) -> tensor<6xf32> {
  ^bb0(%a: f32):
    ix.yield %a : f32
  }
  func.return %y : tensor<6xf32>
}
// CHECK-LABEL: func.func @temp
// CHECK:         %[[T:.*]] = memref.alloc() {alignment = 64 : i64} : memref<6xf32>
// CHECK:         %[[REM:.*]] = arith.remsi
// CHECK:         %[[NEG:.*]] = arith.cmpi slt, %[[REM]]
// CHECK-NEXT:    %[[UP:.*]] = arith.addi %[[REM]]
// CHECK-NEXT:    %[[IDX:.*]] = arith.select %[[NEG]], %[[UP]], %[[REM]] : index
// CHECK-NEXT:    memref.load %[[T]][%[[IDX]]] : memref<6xf32>
