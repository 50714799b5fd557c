// RUN: mlc-opt %s | filecheck %s
// RUN: MLC_ROUNDTRIP

// The index-level custom syntax: reduction variables, per-read quasi-affine maps, fill values.
func.func @window(%x: tensor<2x8x8xf32>, %w: tensor<3x3xf32>) -> tensor<2x4x3xf32> {
  %y = ix.compute sum(r0: 3, r1: 3) (%x[d0, d1 * 2 + r0 - 1, d2 * 3 + r1 * 2 - 2], %w[r0, r1]) : (tensor<2x8x8xf32>, tensor<3x3xf32>) -> tensor<2x4x3xf32> {
  ^bb0(%a: f32, %b: f32):
    %p = arith.mulf %a, %b : f32
    ix.yield %p : f32
  }
  func.return %y : tensor<2x4x3xf32>
}
// CHECK-LABEL: func.func @window
// CHECK:       %y = ix.compute sum(r0: 3, r1: 3) (%x[d0, d1 * 2 + r0 - 1, d2 * 3 + r1 * 2 - 2], %w[r0, r1]) : (tensor<2x8x8xf32>, tensor<3x3xf32>) -> tensor<2x4x3xf32> {
// CHECK-NEXT:  ^bb0(%a: f32, %b: f32):
// CHECK-NEXT:    %p = arith.mulf %a, %b : f32
// CHECK-NEXT:    ix.yield %p : f32

func.func @pool_max(%x: tensor<8xf64>) -> tensor<4xf64> {
  %y = ix.compute max(r0: 3) (%x[d0 * 2 + r0 - 1] fill -inf) : (tensor<8xf64>) -> tensor<4xf64> {
  ^bb0(%a: f64):
    ix.yield %a : f64
  }
  func.return %y : tensor<4xf64>
}
// CHECK-LABEL: func.func @pool_max
// CHECK:       ix.compute max(r0: 3) (%x[d0 * 2 + r0 - 1] fill -inf)

func.func @upsample_diag(%x: tensor<4x4xf32>) -> tensor<8x4xf32> {
  %y = ix.compute (%x[d0 floordiv 2, d1], %x[d1, d1], %x[d0 mod 3, d1]) : (tensor<4x4xf32>, tensor<4x4xf32>, tensor<4x4xf32>) -> tensor<8x4xf32> {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %i = ix.index 0
    %s = arith.addf %a, %b : f32
    %t = arith.addf %s, %c : f32
    ix.yield %t : f32
  }
  func.return %y : tensor<8x4xf32>
}
// CHECK-LABEL: func.func @upsample_diag
// CHECK:       ix.compute (%x[d0 floordiv 2, d1], %x[d1, d1], %x[d0 mod 3, d1])
// CHECK:       %i = ix.index 0
