// RUN: mlc-opt %s --split-input-file --verify-diagnostics | filecheck %s

func.func @clamp(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = nn.clamp %x {lo = 2.0 : f64, hi = 1.0 : f64} : (tensor<4xf32>) -> tensor<4xf32>
  func.return %y : tensor<4xf32>
}
// CHECK: Operation does not verify: nn.clamp: lo=2 is greater than hi=1

// -----

func.func @hardtanh(%x: tensor<4xf64>) -> tensor<4xf64> {
  %y = nn.hardtanh %x {lo = 0.5 : f64, hi = -0.5 : f64} : (tensor<4xf64>) -> tensor<4xf64>
  func.return %y : tensor<4xf64>
}
// CHECK: Operation does not verify: nn.hardtanh: lo=0.5 is greater than hi=-0.5

// -----

func.func @leaky(%x: tensor<4xf32>) -> tensor<3xf32> {
  %y = nn.leaky_relu %x {alpha = 0.01 : f64} : (tensor<4xf32>) -> tensor<3xf32>
  func.return %y : tensor<3xf32>
}
// CHECK: Operation does not verify: nn.leaky_relu: result type f32[3] is wrong (dimension 0), expected f32[4]

// -----

func.func @clamp_tensor(%x: tensor<2x3xf32>, %lo: tensor<4xf32>, %hi: tensor<f32>) -> tensor<2x3xf32> {
  %y = nn.clamp_tensor %x, %lo, %hi : (tensor<2x3xf32>, tensor<4xf32>, tensor<f32>) -> tensor<2x3xf32>
  func.return %y : tensor<2x3xf32>
}
// CHECK: Operation does not verify: nn.clamp_tensor: x f32[2, 3], lo f32[4] and hi f32[] do not broadcast

// -----

func.func @clamp_tensor_shape(%x: tensor<3xf32>, %lo: tensor<2x1xf32>, %hi: tensor<f32>) -> tensor<3xf32> {
  %y = nn.clamp_tensor %x, %lo, %hi : (tensor<3xf32>, tensor<2x1xf32>, tensor<f32>) -> tensor<3xf32>
  func.return %y : tensor<3xf32>
}
// CHECK: Operation does not verify: nn.clamp_tensor: result type f32[3] is wrong, expected f32[2, 3]

// -----

func.func @gelu(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = nn.gelu %x {approximate = "sigmoid"} : (tensor<4xf32>) -> tensor<4xf32>
  func.return %y : tensor<4xf32>
}
// CHECK: Operation does not verify: nn.gelu: approximate must be none or tanh, got sigmoid

// -----

func.func @upsample(%x: tensor<1x2x2x1xf32>) -> tensor<1x4x4x1xf32> {
  %y = nn.upsample2d %x {scale = array<i64: 2, 2>, mode = "bicubic"} : (tensor<1x2x2x1xf32>) -> tensor<1x4x4x1xf32>
  func.return %y : tensor<1x4x4x1xf32>
}
// CHECK: Operation does not verify: nn.upsample2d: mode must be nearest or bilinear, got bicubic

// -----

func.func @conv_transpose_output_padding(%x: tensor<1x3x3x2xf32>, %w: tensor<3x3x4x2xf32>) -> tensor<1x8x8x4xf32> {
  %y = nn.conv2d_transpose %x, %w {stride = array<i64: 2, 2>, padding = array<i64: 0, 0, 0, 0>, dilation = array<i64: 1, 1>, output_padding = array<i64: 1, 2>} : (tensor<1x3x3x2xf32>, tensor<3x3x4x2xf32>) -> tensor<1x8x8x4xf32>
  func.return %y : tensor<1x8x8x4xf32>
}
// CHECK: Operation does not verify: nn.conv2d_transpose: output_padding 2 (width) must be non-negative and smaller than max(stride=2, dilation=1) = 2

// -----

func.func @conv_transpose_groups(%x: tensor<1x3x3x6xf32>, %w: tensor<3x3x2x6xf32>) -> tensor<1x5x5x8xf32> {
  %y = nn.conv2d_transpose %x, %w {stride = array<i64: 1, 1>, padding = array<i64: 0, 0, 0, 0>, dilation = array<i64: 1, 1>, groups = 4 : i64} : (tensor<1x3x3x6xf32>, tensor<3x3x2x6xf32>) -> tensor<1x5x5x8xf32>
  func.return %y : tensor<1x5x5x8xf32>
}
// CHECK: Operation does not verify: nn.conv2d_transpose: 6 input channels are not divisible by groups=4

// -----

func.func @conv_transpose_result(%x: tensor<1x3x3x2xf32>, %w: tensor<3x3x4x2xf32>) -> tensor<1x6x7x4xf32> {
  %y = nn.conv2d_transpose %x, %w {stride = array<i64: 2, 2>, padding = array<i64: 1, 1, 1, 1>, dilation = array<i64: 1, 1>, output_padding = array<i64: 1, 0>} : (tensor<1x3x3x2xf32>, tensor<3x3x4x2xf32>) -> tensor<1x6x7x4xf32>
  func.return %y : tensor<1x6x7x4xf32>
}
// CHECK: Operation does not verify: nn.conv2d_transpose: result type f32[1, 6, 7, 4] is wrong (dimension 2), expected f32[1, 6, 5, 4]
