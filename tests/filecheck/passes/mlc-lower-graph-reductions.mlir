// RUN: mlc-opt %s -p mlc-lower-graph | filecheck %s

// min is -max(-x): the negated body, a max reduction, then the negation back.
func.func @min(%x: tensor<2x3xf32>) -> tensor<2xf32> {
  %y = nn.min %x {axes = array<i64: 1>} : (tensor<2x3xf32>) -> tensor<2xf32>
  func.return %y : tensor<2xf32>
}
// CHECK-LABEL: func.func @min
// CHECK-NEXT:    %[[M:.*]] = ix.compute max(r0: 3) (%x[d0, r0]) : (tensor<2x3xf32>) -> tensor<2xf32> {
// CHECK-NEXT:    ^bb0(%[[V:.*]]: f32):
// CHECK-NEXT:      %[[N:.*]] = arith.negf %[[V]] : f32
// CHECK-NEXT:      ix.yield %[[N]] : f32
// CHECK:         %y = ix.compute (%[[M]][d0]) : (tensor<2xf32>) -> tensor<2xf32> {
// CHECK:           arith.negf

// layernorm over the last two dims: mean and variance kept as size-1 dims, gamma and beta
// read over the normalised dims only.
func.func @layernorm(%x: tensor<2x3x4xf64>, %g: tensor<3x4xf64>) -> tensor<2x3x4xf64> {
  %y = nn.layernorm %x, %g, %g {eps = 1.0e-05 : f64, axes = 2 : i64} : (tensor<2x3x4xf64>, tensor<3x4xf64>, tensor<3x4xf64>) -> tensor<2x3x4xf64>
  func.return %y : tensor<2x3x4xf64>
}
// CHECK-LABEL: func.func @layernorm
// CHECK-NEXT:    %[[MU:.*]] = ix.compute sum(r0: 3, r1: 4) (%x[d0, r0, r1]) : (tensor<2x3x4xf64>) -> tensor<2x1x1xf64> {
// CHECK:         %[[XC:.*]] = ix.compute (%x[d0, d1, d2], %[[MU]][d0, 0, 0])
// CHECK:         %[[VAR:.*]] = ix.compute sum(r0: 3, r1: 4) (%[[XC]][d0, r0, r1]) : (tensor<2x3x4xf64>) -> tensor<2x1x1xf64> {
// CHECK:         %y = ix.compute (%[[XC]][d0, d1, d2], %[[VAR]][d0, 0, 0], %g[d1, d2], %g[d1, d2])

// bce_logits: one branch per sign of z, each smooth (no max or |z| kink at 0); the terms are an
// op of their own, summed by a second one (the scheduler computes them in vectors).
func.func @bce_logits(%z: tensor<2x3xf32>, %t: tensor<2x3xf32>) -> tensor<f32> {
  %y = nn.bce_logits %z, %t : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<f32>
  func.return %y : tensor<f32>
}
// CHECK-LABEL: func.func @bce_logits
// CHECK-NEXT:    %[[TERMS:.*]] = ix.compute (%z[d0, d1], %t[d0, d1]) : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32> {
// CHECK:           %[[POS:.*]] = arith.cmpf ogt
// CHECK-NOT:       math.absf
// CHECK:           arith.select %[[POS]]
// CHECK:         %y = ix.compute sum(r0: 2, r1: 3) (%[[TERMS]][r0, r1]) : (tensor<2x3xf32>) -> tensor<f32> {
