// RUN: mlc-opt %s -p mlc-lower-graph | filecheck %s

// transpose: y[i0, i1, i2] = x[i1, i2, i0] for perm (2, 0, 1).
func.func @transpose(%x: tensor<2x3x4xf32>) -> tensor<4x2x3xf32> {
  %y = nn.transpose %x {perm = array<i64: 2, 0, 1>} : (tensor<2x3x4xf32>) -> tensor<4x2x3xf32>
  func.return %y : tensor<4x2x3xf32>
}
// CHECK-LABEL: func.func @transpose
// CHECK-NEXT:    %y = ix.compute (%x[d1, d2, d0]) : (tensor<2x3x4xf32>) -> tensor<4x2x3xf32> {

// broadcast_to [3, 1, 4] -> [2, 3, 5, 4]: the leading dim is new, the size-1 dim reads index 0.
func.func @broadcast_to(%x: tensor<3x1x4xf32>) -> tensor<2x3x5x4xf32> {
  %y = nn.broadcast_to %x : (tensor<3x1x4xf32>) -> tensor<2x3x5x4xf32>
  func.return %y : tensor<2x3x5x4xf32>
}
// CHECK-LABEL: func.func @broadcast_to
// CHECK-NEXT:    %y = ix.compute (%x[d1, 0, d3]) : (tensor<3x1x4xf32>) -> tensor<2x3x5x4xf32> {

// slice start=3 step=-2: y[.., k] = x[.., 3 - 2k], a negative stride.
func.func @slice(%x: tensor<2x3x4xf32>) -> tensor<2x3x2xf32> {
  %y = nn.slice %x {axis = 2 : i64, start = 3 : i64, step = -2 : i64} : (tensor<2x3x4xf32>) -> tensor<2x3x2xf32>
  func.return %y : tensor<2x3x2xf32>
}
// CHECK-LABEL: func.func @slice
// CHECK-NEXT:    %y = ix.compute (%x[d0, d1, d2 * -2 + 3]) : (tensor<2x3x4xf32>) -> tensor<2x3x2xf32> {

// pad: the read is shifted by the padding before each dim and filled with the value outside x.
func.func @pad(%x: tensor<2x3x4xf32>) -> tensor<3x5x4xf32> {
  %y = nn.pad %x {pads = array<i64: 1, 0, 0, 2>, value = -1.5 : f64} : (tensor<2x3x4xf32>) -> tensor<3x5x4xf32>
  func.return %y : tensor<3x5x4xf32>
}
// CHECK-LABEL: func.func @pad
// CHECK-NEXT:    %y = ix.compute (%x[d0 - 1, d1, d2] fill -1.5) : (tensor<2x3x4xf32>) -> tensor<3x5x4xf32> {

// upsample2d (nearest): output row i reads input row i floordiv sh.
func.func @upsample(%x: tensor<1x3x2x2xf32>) -> tensor<1x6x6x2xf32> {
  %y = nn.upsample2d %x {scale = array<i64: 2, 3>} : (tensor<1x3x2x2xf32>) -> tensor<1x6x6x2xf32>
  func.return %y : tensor<1x6x6x2xf32>
}
// CHECK-LABEL: func.func @upsample
// CHECK-NEXT:    %y = ix.compute (%x[d0, d1 floordiv 2, d2 floordiv 3, d3]) : (tensor<1x3x2x2xf32>) -> tensor<1x6x6x2xf32> {

// upsample2d (bilinear): rows i read i0 = (i - 1) floordiv 2 and i0 + 1 with weights 1 - λ and λ,
// λ = 1/4 or 3/4 by the phase (i + 1) mod 2, all the weight on row 0 above it (i < 1) and on
// row 2 below it (i >= 5); the columns (scale 1) are read as they are.
func.func @bilinear(%x: tensor<1x3x5x2xf32>) -> tensor<1x6x5x2xf32> {
  %y = nn.upsample2d %x {scale = array<i64: 2, 1>, mode = "bilinear"} : (tensor<1x3x5x2xf32>) -> tensor<1x6x5x2xf32>
  func.return %y : tensor<1x6x5x2xf32>
}
// CHECK-LABEL: func.func @bilinear
// CHECK-NEXT:    %y = ix.compute (%x[d0, (d1 - 1) floordiv 2, d2, d3], %x[d0, (d1 + 1) floordiv 2, d2, d3]) : (tensor<1x3x5x2xf32>, tensor<1x3x5x2xf32>) -> tensor<1x6x5x2xf32> {
// CHECK-NEXT:    ^bb0(%[[X0:.*]]: f32, %[[X1:.*]]: f32):
// CHECK-NEXT:      %[[I:.*]] = ix.index 1
// CHECK:           %[[PHASE:.*]] = arith.remsi %{{.*}}, %{{.*}} : index
// CHECK-NEXT:      %[[ODD:.*]] = arith.constant 7.500000e-01 : f32
// CHECK:           %[[EVEN:.*]] = arith.constant 2.500000e-01 : f32
// CHECK-NEXT:      %[[L:.*]] = arith.select %{{.*}}, %[[EVEN]], %[[ODD]] : f32
// CHECK:           %[[TOP:.*]] = arith.cmpi slt, %[[I]], %{{.*}} : index
// CHECK:           %[[L1:.*]] = arith.select %[[TOP]], %{{.*}}, %[[L]] : f32
// CHECK:           %[[BOTTOM:.*]] = arith.cmpi sge, %[[I]], %{{.*}} : index
// CHECK:           %[[L2:.*]] = arith.select %[[BOTTOM]], %{{.*}}, %[[L1]] : f32
// CHECK:           %[[W0:.*]] = arith.subf %{{.*}}, %[[L2]] : f32
// CHECK-NEXT:      %[[A:.*]] = arith.mulf %[[W0]], %[[X0]] : f32
// CHECK-NEXT:      %[[B:.*]] = arith.mulf %[[L2]], %[[X1]] : f32
// CHECK-NEXT:      %[[Y:.*]] = arith.addf %[[A]], %[[B]] : f32
// CHECK-NEXT:      ix.yield %[[Y]] : f32
