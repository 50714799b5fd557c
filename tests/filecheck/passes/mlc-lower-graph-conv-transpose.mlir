// RUN: mlc-opt %s -p mlc-lower-graph | filecheck %s
// RUN: mlc-opt %s -p mlc-lower-graph,mlc-auto-schedule{vector-bytes=32} | filecheck %s --check-prefix=SCHEDULE

// Stride 2, 3x3, `same` on a 16x16 output (pads 0, 1): the scatter
// y[n, 2i + a, 2j + b, f] += x[n,i,j,c] * w[a,b,f,c] runs as one gather per phase (p mod 2, q mod 2),
// each summing exactly its taps (a = 2 r0 on even rows, a = 1 on odd ones: 4, 2, 2 and 1 of them),
// rows past x reading its zero fill, then the interleave of the phases.
func.func @strided(%x: tensor<1x8x8x2xf32>, %w: tensor<3x3x8x2xf32>) -> tensor<1x16x16x8xf32> {
  %y = nn.conv2d_transpose %x, %w {stride = array<i64: 2, 2>, padding = array<i64: 0, 1, 0, 1>, dilation = array<i64: 1, 1>} : (tensor<1x8x8x2xf32>, tensor<3x3x8x2xf32>) -> tensor<1x16x16x8xf32>
  func.return %y : tensor<1x16x16x8xf32>
}
// CHECK-LABEL: func.func @strided
// CHECK-NOT:     ix.scatter
// CHECK:         %y_p0x0 = ix.compute sum(r0: 2, r1: 2, r2: 2) (%x[d0, d1 - r0, d2 - r1, r2], %w[r0 * 2, r1 * 2, d3, r2]) : (tensor<1x8x8x2xf32>, tensor<3x3x8x2xf32>) -> tensor<1x8x8x8xf32>
// CHECK:         %y_p0x1 = ix.compute sum(r0: 2, r1: 2) (%x[d0, d1 - r0, d2, r1], %w[r0 * 2, 1, d3, r1])
// CHECK:         %y_p1x0 = ix.compute sum(r0: 2, r1: 2) (%x[d0, d1, d2 - r0, r1], %w[1, r0 * 2, d3, r1])
// CHECK:         %y_p1x1 = ix.compute sum(r0: 2) (%x[d0, d1, d2, r0], %w[1, 1, d3, r0])
// CHECK:         %y = ix.compute (%y_p0x0[d0, d1 floordiv 2, d2 floordiv 2, d3], %y_p0x1[d0, d1 floordiv 2, d2 floordiv 2, d3], %y_p1x0[d0, d1 floordiv 2, d2 floordiv 2, d3], %y_p1x1[d0, d1 floordiv 2, d2 floordiv 2, d3]) : {{.*}} -> tensor<1x16x16x8xf32>
// CHECK:         arith.remsi
// CHECK:         func.return %y

// The phase gathers run through the fast nest: vectorized along the output channels, a register
// tile, the filter (whose lanes walk f, not its last dim c) staged once.
// SCHEDULE-LABEL: func.func @strided
// SCHEDULE:         %y_p0x0 = ix.compute {{.*}}mlc.schedule = #ix.schedule<{{.*}}vectorize(d3){{.*}}stage(1)
// SCHEDULE:         %y = ix.compute {{.*}}vectorize(d3)

// Stride 1 with 3 groups of 2 channels and Fg = 2: output channel o reads the channels of its
// group (o floordiv 2) * 2 + c and the filter's o mod 2; no phases.
func.func @grouped(%x: tensor<1x4x4x6xf32>, %w: tensor<2x2x2x6xf32>) -> tensor<1x5x5x6xf32> {
  %y = nn.conv2d_transpose %x, %w {stride = array<i64: 1, 1>, padding = array<i64: 0, 0, 0, 0>, dilation = array<i64: 1, 1>, groups = 3 : i64} : (tensor<1x4x4x6xf32>, tensor<2x2x2x6xf32>) -> tensor<1x5x5x6xf32>
  func.return %y : tensor<1x5x5x6xf32>
}
// CHECK-LABEL: func.func @grouped
// CHECK-NEXT:    %y = ix.compute sum(r0: 2, r1: 2, r2: 2) (%x[d0, d1 - r0, d2 - r1, d3 floordiv 2 * 2 + r2], %w[r0, r1, d3 mod 2, d3 floordiv 2 * 2 + r2]) : (tensor<1x4x4x6xf32>, tensor<2x2x2x6xf32>) -> tensor<1x5x5x6xf32>

// Dilation 3 > stride 2 with output padding: p = 2i + 3a, so the phases are p mod 3 and each
// phase of a 3x3 input has one tap (i = 2t mod 3): no reduction left.
func.func @dilated(%x: tensor<1x3x3x1xf32>, %w: tensor<3x3x1x1xf32>) -> tensor<1x12x12x1xf32> {
  %y = nn.conv2d_transpose %x, %w {stride = array<i64: 2, 2>, padding = array<i64: 0, 0, 0, 0>, dilation = array<i64: 3, 3>, output_padding = array<i64: 1, 1>} : (tensor<1x3x3x1xf32>, tensor<3x3x1x1xf32>) -> tensor<1x12x12x1xf32>
  func.return %y : tensor<1x12x12x1xf32>
}
// CHECK-LABEL: func.func @dilated
// CHECK:         %y_p0x1 = ix.compute (%x[d0, 0, 2, 0], %w[d1, d2 - 1, d3, 0]) : (tensor<1x3x3x1xf32>, tensor<3x3x1x1xf32>) -> tensor<1x4x4x1xf32>
// CHECK:         %y = ix.compute ({{.*}}%y_p2x2[d0, d1 floordiv 3, d2 floordiv 3, d3])
