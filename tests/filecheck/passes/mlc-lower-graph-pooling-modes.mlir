// RUN: mlc-opt %s -p mlc-lower-graph | filecheck %s

// ceil_mode: 5 rows, window 2, stride 2 give 3 outputs; the last window's second row leaves the
// input and reads -inf.
func.func @max_ceil(%x: tensor<1x5x5x1xf32>) -> tensor<1x3x3x1xf32> {
  %y = nn.maxpool2d %x {size = array<i64: 2, 2>, stride = array<i64: 2, 2>, padding = array<i64: 0, 0, 0, 0>, ceil_mode} : (tensor<1x5x5x1xf32>) -> tensor<1x3x3x1xf32>
  func.return %y : tensor<1x3x3x1xf32>
}
// CHECK-LABEL: func.func @max_ceil
// CHECK-NEXT:    %y = ix.compute max(r0: 2, r1: 2) (%x[d0, d1 * 2 + r0, d2 * 2 + r1, d3] fill -inf)

// Dilation spreads the taps of a max pool.
func.func @max_dilated(%x: tensor<1x6x6x1xf32>) -> tensor<1x4x4x1xf32> {
  %y = nn.maxpool2d %x {size = array<i64: 2, 2>, stride = array<i64: 1, 1>, padding = array<i64: 0, 0, 0, 0>, dilation = array<i64: 2, 2>} : (tensor<1x6x6x1xf32>) -> tensor<1x4x4x1xf32>
  func.return %y : tensor<1x4x4x1xf32>
}
// CHECK-LABEL: func.func @max_dilated
// CHECK-NEXT:    %y = ix.compute max(r0: 2, r1: 2) (%x[d0, d1 + r0 * 2, d2 + r1 * 2, d3] fill -inf)

// count_pad without an extra window: every window has KH*KW cells, the divisor is constant.
func.func @avg_count_pad(%x: tensor<1x5x5x1xf32>) -> tensor<1x3x3x1xf32> {
  %y = nn.avgpool2d %x {size = array<i64: 3, 3>, stride = array<i64: 2, 2>, padding = array<i64: 1, 1, 1, 1>, count_pad} : (tensor<1x5x5x1xf32>) -> tensor<1x3x3x1xf32>
  func.return %y : tensor<1x3x3x1xf32>
}
// CHECK-LABEL: func.func @avg_count_pad
// CHECK:         %{{.*}} = arith.constant 0.111111112 : f32
// CHECK-NOT:     arith.minsi
// CHECK:         func.return

// count_pad with a ceil window past the padding: the divisor counts the cells inside [-pt, H + pb).
func.func @avg_ceil_count_pad(%x: tensor<1x6x6x1xf32>) -> tensor<1x4x4x1xf32> {
  %y = nn.avgpool2d %x {size = array<i64: 3, 3>, stride = array<i64: 2, 2>, padding = array<i64: 1, 1, 1, 1>, ceil_mode, count_pad} : (tensor<1x6x6x1xf32>) -> tensor<1x4x4x1xf32>
  func.return %y : tensor<1x4x4x1xf32>
}
// CHECK-LABEL: func.func @avg_ceil_count_pad
// CHECK:         %[[HI:.*]] = arith.constant 7 : index
// CHECK:         arith.minsi %{{.*}}, %[[HI]] : index
// CHECK:         %[[LO:.*]] = arith.constant -1 : index
// CHECK:         arith.maxsi %{{.*}}, %[[LO]] : index
