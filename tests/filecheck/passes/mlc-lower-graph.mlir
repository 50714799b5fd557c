// RUN: mlc-opt %s -p mlc-lower-graph | filecheck %s
// RUN: mlc-opt %s -p mlc-lower-graph | filecheck %s --check-prefix=NO-NN

// Every nn op is replaced by ix.compute ops; nothing of the graph level is left.
// NO-NN-NOT: nn.

// Convolution: one sum over (a, b, c) = (r0, r1, r2); the input is read at
// i * stride + a - pad_top (and likewise for j), reads in the padding give 0 (no fill).
func.func @conv(%x: tensor<1x5x5x2xf32>, %w: tensor<3x3x2x4xf32>) -> tensor<1x3x3x4xf32> {
  %y = nn.conv2d %x, %w {stride = array<i64: 2, 2>, padding = array<i64: 1, 1, 1, 1>, dilation = array<i64: 1, 1>} : (tensor<1x5x5x2xf32>, tensor<3x3x2x4xf32>) -> tensor<1x3x3x4xf32>
  func.return %y : tensor<1x3x3x4xf32>
}
// CHECK-LABEL: func.func @conv
// CHECK-NEXT:    %y = ix.compute sum(r0: 3, r1: 3, r2: 2) (%x[d0, d1 * 2 + r0 - 1, d2 * 2 + r1 - 1, r2], %w[r0, r1, r2, d3]) : (tensor<1x5x5x2xf32>, tensor<3x3x2x4xf32>) -> tensor<1x3x3x4xf32> {
// CHECK-NEXT:    ^bb0(%[[XV:.*]]: f32, %[[WV:.*]]: f32):
// CHECK-NEXT:      %[[P:.*]] = arith.mulf %[[XV]], %[[WV]] : f32
// CHECK-NEXT:      ix.yield %[[P]] : f32
// CHECK-NEXT:    }
// CHECK-NEXT:    func.return %y

// Dilation scales the tap offset: a * 2 with dilation 2.
func.func @conv_dilated(%x: tensor<1x7x7x1xf32>, %w: tensor<3x3x1x1xf32>) -> tensor<1x3x3x1xf32> {
  %y = nn.conv2d %x, %w {stride = array<i64: 1, 1>, padding = array<i64: 0, 0, 0, 0>, dilation = array<i64: 2, 2>} : (tensor<1x7x7x1xf32>, tensor<3x3x1x1xf32>) -> tensor<1x3x3x1xf32>
  func.return %y : tensor<1x3x3x1xf32>
}
// CHECK-LABEL: func.func @conv_dilated
// CHECK-NEXT:    %y = ix.compute sum(r0: 3, r1: 3, r2: 1) (%x[d0, d1 + r0 * 2, d2 + r1 * 2, r2], %w[r0, r1, r2, d3])

// XNOR binary convolution, pad_value=1: sign(w) and α[f] = mean |w[:, :, :, f]| (1/18 = 3*3*2),
// sign(x), the integer conv of the signs whose padded cells read 1.0, A = mean_c |x| (kept as a
// size-1 channel), K = A convolved with a 3x3 box of 1/9 (zero padded), then P * K * α.
func.func @xnor(%x: tensor<1x4x4x2xf32>, %w: tensor<3x3x2x3xf32>) -> tensor<1x4x4x3xf32> {
  %y = nn.binconv2d %x, %w {stride = array<i64: 1, 1>, padding = array<i64: 1, 1, 1, 1>, dilation = array<i64: 1, 1>, mode = "xnor", pad_value = 1 : i64} : (tensor<1x4x4x2xf32>, tensor<3x3x2x3xf32>) -> tensor<1x4x4x3xf32>
  func.return %y : tensor<1x4x4x3xf32>
}
// CHECK-LABEL: func.func @xnor
// CHECK-NEXT:    %[[SW:.*]] = ix.compute (%w[d0, d1, d2, d3]) : (tensor<3x3x2x3xf32>) -> tensor<3x3x2x3xf32> {
// CHECK-NEXT:    ^bb0(%[[WV:.*]]: f32):
// CHECK-NEXT:      %[[ZERO:.*]] = arith.constant 0.000000e+00 : f32
// CHECK-NEXT:      %[[GE:.*]] = arith.cmpf oge, %[[WV]], %[[ZERO]] : f32
// CHECK-NEXT:      %[[ONE:.*]] = arith.constant 1.000000e+00 : f32
// CHECK-NEXT:      %[[MONE:.*]] = arith.constant -1.000000e+00 : f32
// CHECK-NEXT:      %[[S:.*]] = arith.select %[[GE]], %[[ONE]], %[[MONE]] {{.*}}: f32
// CHECK-NEXT:      ix.yield %[[S]] : f32
// CHECK-NEXT:    }
// CHECK-NEXT:    %[[ALPHA:.*]] = ix.compute sum(r0: 3, r1: 3, r2: 2) (%w[r0, r1, r2, d0]) : (tensor<3x3x2x3xf32>) -> tensor<3xf32> {
// CHECK-NEXT:    ^bb0(%[[AW:.*]]: f32):
// CHECK-NEXT:      %[[ABS:.*]] = math.absf %[[AW]] : f32
// CHECK-NEXT:      %[[INV:.*]] = arith.constant 0.055555556 : f32
// CHECK-NEXT:      %{{.*}} = arith.mulf %[[ABS]], %[[INV]] : f32
// CHECK:         %[[SX:.*]] = ix.compute (%x[0, d1, d2, d3]) : (tensor<1x4x4x2xf32>) -> tensor<1x4x4x2xf32> {
// CHECK:           arith.cmpf oge
// CHECK:         %[[P:.*]] = ix.compute sum(r0: 3, r1: 3, r2: 2) (%[[SX]][d0, d1 + r0 - 1, d2 + r1 - 1, r2] fill 1.0, %[[SW]][r0, r1, r2, d3]) : (tensor<1x4x4x2xf32>, tensor<3x3x2x3xf32>) -> tensor<1x4x4x3xf32> {
// CHECK:         %[[A:.*]] = ix.compute sum(r0: 2) (%x[d0, d1, d2, r0]) : (tensor<1x4x4x2xf32>) -> tensor<1x4x4x1xf32> {
// CHECK-NEXT:    ^bb0(%[[XV:.*]]: f32):
// CHECK-NEXT:      %[[XABS:.*]] = math.absf %[[XV]] : f32
// CHECK-NEXT:      %[[HALF:.*]] = arith.constant 5.000000e-01 : f32
// CHECK-NEXT:      %{{.*}} = arith.mulf %[[XABS]], %[[HALF]] : f32
// CHECK:         %[[K:.*]] = ix.compute sum(r0: 3, r1: 3) (%[[A]][d0, d1 + r0 - 1, d2 + r1 - 1, d3]) : (tensor<1x4x4x1xf32>) -> tensor<1x4x4x1xf32> {
// CHECK-NEXT:    ^bb0(%[[AV:.*]]: f32):
// CHECK-NEXT:      %[[NINTH:.*]] = arith.constant 0.111111112 : f32
// CHECK-NEXT:      %{{.*}} = arith.mulf %[[AV]], %[[NINTH]] : f32
// CHECK:         %y = ix.compute (%[[P]][0, d1, d2, d3], %[[K]][0, d1, d2, 0], %[[ALPHA]][d3]) : (tensor<1x4x4x3xf32>, tensor<1x4x4x1xf32>, tensor<3xf32>) -> tensor<1x4x4x3xf32> {
// CHECK-NEXT:    ^bb0(%[[PV:.*]]: f32, %[[KV:.*]]: f32, %[[AL:.*]]: f32):
// CHECK-NEXT:      %[[PK:.*]] = arith.mulf %[[PV]], %[[KV]] : f32
// CHECK-NEXT:      %[[PKA:.*]] = arith.mulf %[[PK]], %[[AL]] : f32
// CHECK-NEXT:      ix.yield %[[PKA]] : f32
// CHECK-NEXT:    }
// CHECK-NEXT:    func.return %y

// BWN: the input is not binarised; an ordinary conv with sign(w), then the product with α
// (one per output, and taps that cancel sum to exactly 0).
func.func @bwn(%x: tensor<1x4x4x2xf32>, %w: tensor<3x3x2x3xf32>) -> tensor<1x2x2x3xf32> {
  %y = nn.binconv2d %x, %w {stride = array<i64: 1, 1>, padding = array<i64: 0, 0, 0, 0>, dilation = array<i64: 1, 1>, mode = "bwn", pad_value = 0 : i64} : (tensor<1x4x4x2xf32>, tensor<3x3x2x3xf32>) -> tensor<1x2x2x3xf32>
  func.return %y : tensor<1x2x2x3xf32>
}
// CHECK-LABEL: func.func @bwn
// CHECK:         %[[SW:.*]] = ix.compute (%w[d0, d1, d2, d3])
// CHECK:         %[[ALPHA:.*]] = ix.compute sum(r0: 3, r1: 3, r2: 2) (%w[r0, r1, r2, d0])
// CHECK:         %[[P:.*]] = ix.compute sum(r0: 3, r1: 3, r2: 2) (%x[d0, d1 + r0, d2 + r1, r2], %[[SW]][r0, r1, r2, d3])
// CHECK:         %y = ix.compute (%[[P]][0, d1, d2, d3], %[[ALPHA]][d3]) : (tensor<1x2x2x3xf32>, tensor<3xf32>) -> tensor<1x2x2x3xf32> {
// CHECK-NEXT:    ^bb0(%[[PV:.*]]: f32, %[[AL:.*]]: f32):
// CHECK-NEXT:      arith.mulf %[[PV]], %[[AL]] : f32
// CHECK-NOT:     ix.compute
// CHECK:         func.return %y

// Max pooling (here `same` padding on H = W = 5: one padded row and column at the end): padded
// cells read -inf, so they never win.
func.func @maxpool(%x: tensor<1x5x5x2xf32>) -> tensor<1x3x3x2xf32> {
  %y = nn.maxpool2d %x {size = array<i64: 2, 2>, stride = array<i64: 2, 2>, padding = array<i64: 0, 1, 0, 1>} : (tensor<1x5x5x2xf32>) -> tensor<1x3x3x2xf32>
  func.return %y : tensor<1x3x3x2xf32>
}
// CHECK-LABEL: func.func @maxpool
// CHECK-NEXT:    %y = ix.compute max(r0: 2, r1: 2) (%x[d0, d1 * 2 + r0, d2 * 2 + r1, d3] fill -inf) : (tensor<1x5x5x2xf32>) -> tensor<1x3x3x2xf32> {
// CHECK-NEXT:    ^bb0(%[[V:.*]]: f32):
// CHECK-NEXT:      ix.yield %[[V]] : f32
// CHECK-NEXT:    }

// Average pooling with padding 1, size 3, stride 2 on H = W = 5: the window sum is divided by
// the number of in-bounds cells, rows(i) * cols(j) with
// rows(i) = min(i * 2 - 1 + 3, 5) - max(i * 2 - 1, 0), computed from ix.index in the body.
func.func @avgpool(%x: tensor<1x5x5x2xf32>) -> tensor<1x3x3x2xf32> {
  %y = nn.avgpool2d %x {size = array<i64: 3, 3>, stride = array<i64: 2, 2>, padding = array<i64: 1, 1, 1, 1>} : (tensor<1x5x5x2xf32>) -> tensor<1x3x3x2xf32>
  func.return %y : tensor<1x3x3x2xf32>
}
// CHECK-LABEL: func.func @avgpool
// CHECK-NEXT:    %y = ix.compute sum(r0: 3, r1: 3) (%x[d0, d1 * 2 + r0 - 1, d2 * 2 + r1 - 1, d3]) : (tensor<1x5x5x2xf32>) -> tensor<1x3x3x2xf32> {
// CHECK-NEXT:    ^bb0(%[[V:.*]]: f32):
// CHECK-NEXT:      %[[I:.*]] = ix.index 1
// CHECK-NEXT:      %[[S:.*]] = arith.constant 2 : index
// CHECK-NEXT:      %[[IS:.*]] = arith.muli %[[I]], %[[S]] : index
// CHECK-NEXT:      %[[PT:.*]] = arith.constant 1 : index
// CHECK-NEXT:      %[[START:.*]] = arith.subi %[[IS]], %[[PT]] : index
// CHECK-NEXT:      %[[KH:.*]] = arith.constant 3 : index
// CHECK-NEXT:      %[[END:.*]] = arith.addi %[[START]], %[[KH]] : index
// CHECK-NEXT:      %[[H:.*]] = arith.constant 5 : index
// CHECK-NEXT:      %[[HI:.*]] = arith.minsi %[[END]], %[[H]] : index
// CHECK-NEXT:      %[[Z:.*]] = arith.constant 0 : index
// CHECK-NEXT:      %[[LO:.*]] = arith.maxsi %[[START]], %[[Z]] : index
// CHECK-NEXT:      %[[ROWS:.*]] = arith.subi %[[HI]], %[[LO]] : index
// CHECK-NEXT:      %[[J:.*]] = ix.index 2
// CHECK-NEXT:      %{{.*}} = arith.constant 2 : index
// CHECK-NEXT:      %[[JS:.*]] = arith.muli %[[J]], %{{.*}} : index
// CHECK-NEXT:      %{{.*}} = arith.constant 1 : index
// CHECK-NEXT:      %[[JSTART:.*]] = arith.subi %[[JS]], %{{.*}} : index
// CHECK-NEXT:      %{{.*}} = arith.constant 3 : index
// CHECK-NEXT:      %[[JEND:.*]] = arith.addi %[[JSTART]], %{{.*}} : index
// CHECK-NEXT:      %{{.*}} = arith.constant 5 : index
// CHECK-NEXT:      %[[JHI:.*]] = arith.minsi %[[JEND]], %{{.*}} : index
// CHECK-NEXT:      %{{.*}} = arith.constant 0 : index
// CHECK-NEXT:      %[[JLO:.*]] = arith.maxsi %[[JSTART]], %{{.*}} : index
// CHECK-NEXT:      %[[COLS:.*]] = arith.subi %[[JHI]], %[[JLO]] : index
// CHECK-NEXT:      %[[CELLS:.*]] = arith.muli %[[ROWS]], %[[COLS]] : index
// CHECK-NEXT:      %[[CI:.*]] = arith.index_cast %[[CELLS]] : index to i64
// CHECK-NEXT:      %[[CF:.*]] = arith.sitofp %[[CI]] : i64 to f32
// CHECK-NEXT:      %[[AVG:.*]] = arith.divf %[[V]], %[[CF]] : f32
// CHECK-NEXT:      ix.yield %[[AVG]] : f32

// Without padding every window is inside: the sum is scaled by 1 / (KH * KW).
func.func @avgpool_valid(%x: tensor<1x4x4x1xf32>) -> tensor<1x2x2x1xf32> {
  %y = nn.avgpool2d %x {size = array<i64: 2, 2>, stride = array<i64: 2, 2>, padding = array<i64: 0, 0, 0, 0>} : (tensor<1x4x4x1xf32>) -> tensor<1x2x2x1xf32>
  func.return %y : tensor<1x2x2x1xf32>
}
// CHECK-LABEL: func.func @avgpool_valid
// CHECK-NEXT:    %y = ix.compute sum(r0: 2, r1: 2) (%x[d0, d1 * 2 + r0, d2 * 2 + r1, d3])
// CHECK-NEXT:    ^bb0(%[[V:.*]]: f32):
// CHECK-NEXT:      %[[Q:.*]] = arith.constant 2.500000e-01 : f32
// CHECK-NEXT:      %{{.*}} = arith.mulf %[[V]], %[[Q]] : f32

// Flatten and reshape: a row-major relinearisation as one quasi-affine map (floordiv/mod).
func.func @reshape(%x: tensor<2x3x4xf32>) -> tensor<3x8xf32> {
  %f = nn.reshape %x : (tensor<2x3x4xf32>) -> tensor<2x12xf32>
  %y = nn.reshape %f : (tensor<2x12xf32>) -> tensor<3x8xf32>
  func.return %y : tensor<3x8xf32>
}
// CHECK-LABEL: func.func @reshape
// CHECK-NEXT:    %f = ix.compute (%x[d0, d1 floordiv 4, d1 mod 4]) : (tensor<2x3x4xf32>) -> tensor<2x12xf32> {
// CHECK-NEXT:    ^bb0(%[[A:.*]]: f32):
// CHECK-NEXT:      ix.yield %[[A]] : f32
// CHECK-NEXT:    }
// CHECK-NEXT:    %y = ix.compute (%f[(d0 * 8 + d1) floordiv 12, (d0 * 8 + d1) mod 12]) : (tensor<2x12xf32>) -> tensor<3x8xf32> {

// Concat along axis 1: each input is read shifted by its offset (0 outside it), and a select on
// the axis index (ix.index 1 < 3) picks the input in range.
func.func @concat(%a: tensor<2x3xf32>, %b: tensor<2x5xf32>) -> tensor<2x8xf32> {
  %y = nn.concat %a, %b {axis = 1 : i64} : (tensor<2x3xf32>, tensor<2x5xf32>) -> tensor<2x8xf32>
  func.return %y : tensor<2x8xf32>
}
// CHECK-LABEL: func.func @concat
// CHECK-NEXT:    %y = ix.compute (%a[d0, d1], %b[d0, d1 - 3]) : (tensor<2x3xf32>, tensor<2x5xf32>) -> tensor<2x8xf32> {
// CHECK-NEXT:    ^bb0(%[[A:.*]]: f32, %[[B:.*]]: f32):
// CHECK-NEXT:      %[[I:.*]] = ix.index 1
// CHECK-NEXT:      %[[OFF:.*]] = arith.constant 3 : index
// CHECK-NEXT:      %[[LT:.*]] = arith.cmpi slt, %[[I]], %[[OFF]] : index
// CHECK-NEXT:      %[[V:.*]] = arith.select %[[LT]], %[[A]], %[[B]] : f32
// CHECK-NEXT:      ix.yield %[[V]] : f32

// Broadcasting: operands are aligned at the trailing dimension; a missing leading dim is not
// read, and a size-1 dim is read at 0.
func.func @broadcast_add(%a: tensor<2x3x4xf32>, %b: tensor<3x1xf32>) -> tensor<2x3x4xf32> {
  %y = nn.add %a, %b : (tensor<2x3x4xf32>, tensor<3x1xf32>) -> tensor<2x3x4xf32>
  func.return %y : tensor<2x3x4xf32>
}
// CHECK-LABEL: func.func @broadcast_add
// CHECK-NEXT:    %y = ix.compute (%a[d0, d1, d2], %b[d1, 0]) : (tensor<2x3x4xf32>, tensor<3x1xf32>) -> tensor<2x3x4xf32> {
// CHECK-NEXT:    ^bb0(%[[A:.*]]: f32, %[[B:.*]]: f32):
// CHECK-NEXT:      %[[S:.*]] = arith.addf %[[A]], %[[B]] : f32
// CHECK-NEXT:      ix.yield %[[S]] : f32

// Softmax, numerically stable: m = max over the last axis, z = x - m, s = sum exp(z),
// y = exp(z) / s; m and s keep a size-1 last axis and broadcast against x.
func.func @softmax(%x: tensor<2x5xf32>) -> tensor<2x5xf32> {
  %y = nn.softmax %x : (tensor<2x5xf32>) -> tensor<2x5xf32>
  func.return %y : tensor<2x5xf32>
}
// CHECK-LABEL: func.func @softmax
// CHECK-NEXT:    %[[M:.*]] = ix.compute max(r0: 5) (%x[d0, r0]) : (tensor<2x5xf32>) -> tensor<2x1xf32> {
// CHECK:         %[[Z:.*]] = ix.compute (%x[d0, d1], %[[M]][d0, 0]) : (tensor<2x5xf32>, tensor<2x1xf32>) -> tensor<2x5xf32> {
// CHECK-NEXT:    ^bb0(%[[XV:.*]]: f32, %[[MV:.*]]: f32):
// CHECK-NEXT:      %[[D:.*]] = arith.subf %[[XV]], %[[MV]] : f32
// CHECK-NEXT:      ix.yield %[[D]] : f32
// CHECK-NEXT:    }
// CHECK-NEXT:    %[[S:.*]] = ix.compute sum(r0: 5) (%[[Z]][d0, r0]) : (tensor<2x5xf32>) -> tensor<2x1xf32> {
// CHECK-NEXT:    ^bb0(%[[ZV:.*]]: f32):
// CHECK-NEXT:      %[[E:.*]] = math.exp %[[ZV]] : f32
// CHECK-NEXT:      ix.yield %[[E]] : f32
// CHECK-NEXT:    }
// CHECK-NEXT:    %y = ix.compute (%[[Z]][d0, d1], %[[S]][d0, 0]) : (tensor<2x5xf32>, tensor<2x1xf32>) -> tensor<2x5xf32> {
// CHECK-NEXT:    ^bb0(%[[ZV2:.*]]: f32, %[[SV:.*]]: f32):
// CHECK-NEXT:      %[[E2:.*]] = math.exp %[[ZV2]] : f32
// CHECK-NEXT:      %[[Q:.*]] = arith.divf %[[E2]], %[[SV]] : f32
// CHECK-NEXT:      ix.yield %[[Q]] : f32

// Binary cross-entropy: the terms, each log clamped below at -100 (arith.maximumf), then one sum
// of them over every element to a scalar, scaled by -1/N with N = 4 the first dimension.
func.func @bce(%p: tensor<4x3xf32>, %t: tensor<4x3xf32>) -> tensor<f32> {
  %y = nn.bce %p, %t : (tensor<4x3xf32>, tensor<4x3xf32>) -> tensor<f32>
  func.return %y : tensor<f32>
}
// CHECK-LABEL: func.func @bce
// CHECK-NEXT:    %[[TERMS:.*]] = ix.compute (%p[d0, d1], %t[d0, d1]) : (tensor<4x3xf32>, tensor<4x3xf32>) -> tensor<4x3xf32> {
// CHECK-NEXT:    ^bb0(%[[P:.*]]: f32, %[[T:.*]]: f32):
// CHECK-NEXT:      %[[LOGP:.*]] = math.log %[[P]] : f32
// CHECK-NEXT:      %[[C1:.*]] = arith.constant -1.000000e+02 : f32
// CHECK-NEXT:      %[[LP:.*]] = arith.maximumf %[[LOGP]], %[[C1]] : f32
// CHECK-NEXT:      %[[ONE:.*]] = arith.constant 1.000000e+00 : f32
// CHECK-NEXT:      %[[Q:.*]] = arith.subf %[[ONE]], %[[P]] : f32
// CHECK-NEXT:      %[[LOGQ:.*]] = math.log %[[Q]] : f32
// CHECK-NEXT:      %[[C2:.*]] = arith.constant -1.000000e+02 : f32
// CHECK-NEXT:      %[[LQ:.*]] = arith.maximumf %[[LOGQ]], %[[C2]] : f32
// CHECK-NEXT:      %[[TLP:.*]] = arith.mulf %[[T]], %[[LP]] : f32
// CHECK-NEXT:      %[[ONE2:.*]] = arith.constant 1.000000e+00 : f32
// CHECK-NEXT:      %[[NT:.*]] = arith.subf %[[ONE2]], %[[T]] : f32
// CHECK-NEXT:      %[[NTLQ:.*]] = arith.mulf %[[NT]], %[[LQ]] : f32
// CHECK-NEXT:      %[[SUM:.*]] = arith.addf %[[TLP]], %[[NTLQ]] : f32
// CHECK-NEXT:      ix.yield %[[SUM]] : f32
// CHECK-NEXT:    }
// CHECK-NEXT:    %y = ix.compute sum(r0: 4, r1: 3) (%[[TERMS]][r0, r1]) : (tensor<4x3xf32>) -> tensor<f32> {
// CHECK-NEXT:    ^bb0(%[[E:.*]]: f32):
// CHECK-NEXT:      %[[SCALE:.*]] = arith.constant -2.500000e-01 : f32
// CHECK-NEXT:      %[[R:.*]] = arith.mulf %[[E]], %[[SCALE]] : f32
// CHECK-NEXT:      ix.yield %[[R]] : f32

// Softmax cross-entropy: log_softmax (max, shift, sum of exp, z - log s), then the terms
// t * log_softmax and their scalar sum scaled by -1/N (N = 2).
func.func @softmax_xent(%x: tensor<2x5xf32>, %t: tensor<2x5xf32>) -> tensor<f32> {
  %y = nn.softmax_cross_entropy %x, %t : (tensor<2x5xf32>, tensor<2x5xf32>) -> tensor<f32>
  func.return %y : tensor<f32>
}
// CHECK-LABEL: func.func @softmax_xent
// CHECK:         %[[M:.*]] = ix.compute max(r0: 5) (%x[d0, r0])
// CHECK:         %[[Z:.*]] = ix.compute (%x[d0, d1], %[[M]][d0, 0])
// CHECK:         %[[S:.*]] = ix.compute sum(r0: 5) (%[[Z]][d0, r0])
// CHECK:         %[[LS:.*]] = ix.compute (%[[Z]][d0, d1], %[[S]][d0, 0]) : (tensor<2x5xf32>, tensor<2x1xf32>) -> tensor<2x5xf32> {
// CHECK-NEXT:    ^bb0(%[[ZV:.*]]: f32, %[[SV:.*]]: f32):
// CHECK-NEXT:      %[[LOG:.*]] = math.log %[[SV]] : f32
// CHECK-NEXT:      %{{.*}} = arith.subf %[[ZV]], %[[LOG]] : f32
// CHECK:         %[[TERMS:.*]] = ix.compute (%[[LS]][d0, d1], %t[d0, d1]) : (tensor<2x5xf32>, tensor<2x5xf32>) -> tensor<2x5xf32> {
// CHECK-NEXT:    ^bb0(%[[L:.*]]: f32, %[[T:.*]]: f32):
// CHECK-NEXT:      %[[TL:.*]] = arith.mulf %[[T]], %[[L]] : f32
// CHECK:         %y = ix.compute sum(r0: 2, r1: 5) (%[[TERMS]][r0, r1]) : (tensor<2x5xf32>) -> tensor<f32> {
// CHECK-NEXT:    ^bb0(%[[E:.*]]: f32):
// CHECK-NEXT:      %[[C:.*]] = arith.constant -5.000000e-01 : f32
// CHECK-NEXT:      %{{.*}} = arith.mulf %[[E]], %[[C]] : f32

// Dense: a matmul summing over the input features, then the bias broadcast over rows.
func.func @dense(%x: tensor<4x3xf32>, %w: tensor<3x2xf32>, %b: tensor<2xf32>) -> tensor<4x2xf32> {
  %y = nn.dense %x, %w, %b : (tensor<4x3xf32>, tensor<3x2xf32>, tensor<2xf32>) -> tensor<4x2xf32>
  func.return %y : tensor<4x2xf32>
}
// CHECK-LABEL: func.func @dense
// CHECK-NEXT:    %[[MM:.*]] = ix.compute sum(r0: 3) (%x[d0, r0], %w[r0, d1]) : (tensor<4x3xf32>, tensor<3x2xf32>) -> tensor<4x2xf32> {
// CHECK:         %y = ix.compute (%[[MM]][d0, d1], %b[d1]) : (tensor<4x2xf32>, tensor<2xf32>) -> tensor<4x2xf32> {
// CHECK:           arith.addf
