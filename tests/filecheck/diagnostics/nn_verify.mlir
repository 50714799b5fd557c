// RUN: mlc-opt %s --split-input-file --verify-diagnostics | filecheck %s

// nn ops read from MLIR text are checked by the same shape rules as the frontend uses: a
// declared result type that disagrees with the inferred one names the wrong dimension.

// Dimension 2 (W): (8 - 3) / 1 + 1 = 6, not 7.
func.func @conv_result(%x: tensor<1x8x8x3xf32>, %w: tensor<3x3x3x4xf32>) -> tensor<1x6x7x4xf32> {
  %y = nn.conv2d %x, %w {stride = array<i64: 1, 1>, padding = array<i64: 0, 0, 0, 0>, dilation = array<i64: 1, 1>} : (tensor<1x8x8x3xf32>, tensor<3x3x3x4xf32>) -> tensor<1x6x7x4xf32>
  func.return %y : tensor<1x6x7x4xf32>
}
// CHECK-NOT: Traceback
// CHECK:      nn.conv2d: result type f32[1, 6, 7, 4] is wrong (dimension 2), expected f32[1, 6, 6, 4]
// CHECK:      %y = "nn.conv2d"(%x, %w)
// CHECK-NEXT: ^^^^
// CHECK-NEXT: | Operation does not verify: nn.conv2d: result type f32[1, 6, 7, 4] is wrong (dimension 2), expected f32[1, 6, 6, 4]

// -----
// The padding and stride enter the rule: H = (8 + 1 + 1 - 3) / 2 + 1 = 4, so dimension 1 is wrong.
func.func @conv_padded(%x: tensor<1x8x8x3xf32>, %w: tensor<3x3x3x4xf32>) -> tensor<1x5x4x4xf32> {
  %y = nn.conv2d %x, %w {stride = array<i64: 2, 2>, padding = array<i64: 1, 1, 1, 1>, dilation = array<i64: 1, 1>} : (tensor<1x8x8x3xf32>, tensor<3x3x3x4xf32>) -> tensor<1x5x4x4xf32>
  func.return %y : tensor<1x5x4x4xf32>
}
// CHECK: nn.conv2d: result type f32[1, 5, 4, 4] is wrong (dimension 1), expected f32[1, 4, 4, 4]

// -----
// Input channels that the filter does not expect.
func.func @conv_channels(%x: tensor<1x8x8x3xf32>, %w: tensor<3x3x2x4xf32>) -> tensor<1x6x6x4xf32> {
  %y = nn.conv2d %x, %w {stride = array<i64: 1, 1>, padding = array<i64: 0, 0, 0, 0>, dilation = array<i64: 1, 1>} : (tensor<1x8x8x3xf32>, tensor<3x3x2x4xf32>) -> tensor<1x6x6x4xf32>
  func.return %y : tensor<1x6x6x4xf32>
}
// CHECK: nn.conv2d: input has 3 channels but the filter expects 2 (input f32[1, 8, 8, 3], filter f32[3, 3, 2, 4])

// -----
// Mixed element types between operands.
func.func @dense_types(%x: tensor<2x3xf32>, %w: tensor<3x4xf64>) -> tensor<2x4xf32> {
  %y = nn.dense %x, %w : (tensor<2x3xf32>, tensor<3x4xf64>) -> tensor<2x4xf32>
  func.return %y : tensor<2x4xf32>
}
// CHECK: nn.dense: operand 1 has element type f64, expected f32

// -----
// binconv2d's pad_value is one of 0, 1, -1.
func.func @binconv_pad(%x: tensor<1x4x4x1xf32>, %w: tensor<3x3x1x1xf32>) -> tensor<1x2x2x1xf32> {
  %y = nn.binconv2d %x, %w {stride = array<i64: 1, 1>, padding = array<i64: 0, 0, 0, 0>, dilation = array<i64: 1, 1>, mode = "xnor", pad_value = 2 : i64} : (tensor<1x4x4x1xf32>, tensor<3x3x1x1xf32>) -> tensor<1x2x2x1xf32>
  func.return %y : tensor<1x2x2x1xf32>
}
// CHECK: nn.binconv2d: pad_value must be 0, 1 or -1, got 2
// CHECK-NOT: Traceback
