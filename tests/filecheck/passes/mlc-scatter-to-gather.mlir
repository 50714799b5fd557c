// RUN: mlc-opt %s -p mlc-scatter-to-gather | filecheck %s
// RUN: mlc-opt %s -p 'mlc-scatter-to-gather{phase_limit=1}' 2>&1 | filecheck %s --check-prefix=GUARD

// The adjoint of a padded stride-1 conv1d, y[o] = Σ_k x[o + k - 1] * w[k], for x: the scatter
// dx[o + k - 1] += dy[o] * w[k] becomes a gather with the flipped kernel, o = u - k + 1.
// dy reads 0 where o leaves [0, 8) and the body is linear in it, so no range check; the unused
// read of x is dropped.
func.func @conv1d_stride1(%x: tensor<8xf32>, %w: tensor<3xf32>, %dy: tensor<8xf32>) -> tensor<8xf32> {
  %dx = ix.scatter [8, 3] into [d0 + d1 - 1] (%x[d0 + d1 - 1], %w[d1], %dy[d0]) : (tensor<8xf32>, tensor<3xf32>, tensor<8xf32>) -> tensor<8xf32> {
  ^bb0(%a: f32, %b: f32, %g: f32):
    %p = arith.mulf %g, %b : f32
    ix.yield %p : f32
  }
  func.return %dx : tensor<8xf32>
}
// CHECK-LABEL: func.func @conv1d_stride1
// CHECK-NEXT:    %dx = ix.compute sum(r0: 3) (%w[r0], %dy[d0 - r0 + 1]) : (tensor<3xf32>, tensor<8xf32>) -> tensor<8xf32> {
// CHECK-NEXT:    ^bb0(%b: f32, %g: f32):
// CHECK-NEXT:      %p = arith.mulf %g, %b : f32
// CHECK-NEXT:      ix.yield %p : f32
// CHECK-NEXT:    }
// CHECK-NEXT:    func.return %dx : tensor<8xf32>

// Stride 2: u = 2o + k - 1. Phase u = 2q is written by tap k = 1 only (o = q), phase
// u = 2q + 1 by taps k = 0, 2 (k = 2 r0, o = q - r0 + 1): 1 + 2 multiply-adds per pair of
// inputs, as many as the forward's 3 per output. An interleave puts the phases together.
func.func @conv1d_stride2(%x: tensor<8xf32>, %w: tensor<3xf32>, %dy: tensor<4xf32>) -> tensor<8xf32> {
  %dx = ix.scatter [4, 3] into [d0 * 2 + d1 - 1] (%x[d0 * 2 + d1 - 1], %w[d1], %dy[d0]) : (tensor<8xf32>, tensor<3xf32>, tensor<4xf32>) -> tensor<8xf32> {
  ^bb0(%a: f32, %b: f32, %g: f32):
    %p = arith.mulf %g, %b : f32
    ix.yield %p : f32
  }
  func.return %dx : tensor<8xf32>
}
// CHECK-LABEL: func.func @conv1d_stride2
// CHECK-NEXT:    %dx_p0 = ix.compute (%w[1], %dy[d0]) : (tensor<3xf32>, tensor<4xf32>) -> tensor<4xf32> {
// CHECK:         %dx_p1 = ix.compute sum(r0: 2) (%w[r0 * 2], %dy[d0 - r0 + 1]) : (tensor<3xf32>, tensor<4xf32>) -> tensor<4xf32> {
// CHECK:         %dx = ix.compute (%dx_p0[d0 floordiv 2], %dx_p1[d0 floordiv 2]) : (tensor<4xf32>, tensor<4xf32>) -> tensor<8xf32> {
// CHECK-NEXT:    ^bb0(%[[EVEN:.*]]: f32, %[[ODD:.*]]: f32):
// CHECK-NEXT:      %[[U:.*]] = ix.index 0
// CHECK-NEXT:      %[[TWO:.*]] = arith.constant 2 : index
// CHECK-NEXT:      %[[PHASE:.*]] = arith.remsi %[[U]], %[[TWO]] : index
// CHECK-NEXT:      %[[ZERO:.*]] = arith.constant 0 : index
// CHECK-NEXT:      %[[IS0:.*]] = arith.cmpi eq, %[[PHASE]], %[[ZERO]] : index
// CHECK-NEXT:      %[[V:.*]] = arith.select %[[IS0]], %[[EVEN]], %[[ODD]] : f32
// CHECK-NEXT:      ix.yield %[[V]] : f32
// CHECK-NOT:     ix.scatter

// With phases forbidden (phase_limit=1) the stride stays a predicate on the tap, (u - k + 1) mod
// 2 == 0: still a gather, but half its multiply-adds are thrown away, and a remark says so.
// GUARD:       remark: mlc-scatter-to-gather: %dx: strided gather uses a divisibility guard
// GUARD-LABEL: func.func @conv1d_stride2
// GUARD-NEXT:    %dx = ix.compute sum(r0: 3) (%w[r0], %dy[(d0 - r0 + 1) floordiv 2]) : (tensor<3xf32>, tensor<4xf32>) -> tensor<8xf32> {
// GUARD:           %[[N:.*]] = arith.addi
// GUARD-NEXT:      %[[TWO:.*]] = arith.constant 2 : index
// GUARD-NEXT:      %[[REM:.*]] = arith.remsi %[[N]], %[[TWO]] : index
// GUARD-NEXT:      %[[ZERO:.*]] = arith.constant 0 : index
// GUARD-NEXT:      %[[DIVIDES:.*]] = arith.cmpi eq, %[[REM]], %[[ZERO]] : index
// GUARD-NEXT:      %[[FZERO:.*]] = arith.constant 0.000000e+00 : f32
// GUARD-NEXT:      %{{.*}} = arith.select %[[DIVIDES]], %p, %[[FZERO]] : f32

// The diagonal, y[i] = x[i, i]: i = u0 and i = u1 leave the condition u0 == u1, so dx is
// dy[u0] on the diagonal and 0 off it (Halide 21 writes dy into every row).
func.func @diagonal(%x: tensor<5x5xf64>, %dy: tensor<5xf64>) -> tensor<5x5xf64> {
  %dx = ix.scatter [5] into [d0, d0] (%dy[d0]) : (tensor<5xf64>) -> tensor<5x5xf64> {
  ^bb0(%g: f64):
    ix.yield %g : f64
  }
  func.return %dx : tensor<5x5xf64>
}
// CHECK-LABEL: func.func @diagonal
// CHECK-NEXT:    %dx = ix.compute (%dy[d0]) : (tensor<5xf64>) -> tensor<5x5xf64> {
// CHECK-NEXT:    ^bb0(%g: f64):
// CHECK-NEXT:      %[[U0:.*]] = ix.index 0
// CHECK-NEXT:      %[[U1:.*]] = ix.index 1
// CHECK-NEXT:      %[[SAME:.*]] = arith.cmpi eq, %[[U0]], %[[U1]] : index
// CHECK-NEXT:      %[[ZERO:.*]] = arith.constant 0.000000e+00 : f64
// CHECK-NEXT:      %[[V:.*]] = arith.select %[[SAME]], %g, %[[ZERO]] : f64
// CHECK-NEXT:      ix.yield %[[V]] : f64

// Nearest upsampling, y[i] = x[i floordiv 2]: i = 2u + t with the remainder t in [0, 2) left
// free, a reduction of extent 2 over the two pre-images of each x element.
func.func @upsample(%x: tensor<4xf32>, %dy: tensor<8xf32>) -> tensor<4xf32> {
  %dx = ix.scatter [8] into [d0 floordiv 2] (%x[d0 floordiv 2], %dy[d0]) : (tensor<4xf32>, tensor<8xf32>) -> tensor<4xf32> {
  ^bb0(%a: f32, %g: f32):
    ix.yield %g : f32
  }
  func.return %dx : tensor<4xf32>
}
// CHECK-LABEL: func.func @upsample
// CHECK-NEXT:    %dx = ix.compute sum(r0: 2) (%dy[d0 * 2 + r0]) : (tensor<8xf32>) -> tensor<4xf32> {
// CHECK-NEXT:    ^bb0(%g: f32):
// CHECK-NEXT:      ix.yield %g : f32

// A grouped channel contraction's input gradient (4 groups of Cg = 2 channels, Fg = 2 filters):
// channel u = 2 g + c is phase c of modulus 2 per group g = u floordiv 2. The two phases differ
// only by c (the filter row they read), so they are one gather over u with c = u mod 2, and no
// interleave: the same multiply-adds.
func.func @grouped_channels(%x: tensor<8xf32>, %w: tensor<2x8xf32>, %dy: tensor<8xf32>) -> tensor<8xf32> {
  %dx = ix.scatter [8, 2] into [d0 floordiv 2 * 2 + d1] (%x[d0 floordiv 2 * 2 + d1], %w[d1, d0], %dy[d0]) : (tensor<8xf32>, tensor<2x8xf32>, tensor<8xf32>) -> tensor<8xf32> {
  ^bb0(%a: f32, %b: f32, %g: f32):
    %p = arith.mulf %g, %b : f32
    ix.yield %p : f32
  }
  func.return %dx : tensor<8xf32>
}
// CHECK-LABEL: func.func @grouped_channels
// CHECK-NEXT:    %dx = ix.compute sum(r0: 2) (%w[d0 mod 2, d0 floordiv 2 * 2 + r0], %dy[d0 floordiv 2 * 2 + r0]) : (tensor<2x8xf32>, tensor<8xf32>) -> tensor<8xf32> {
// CHECK-NEXT:    ^bb0(%b: f32, %g: f32):
// CHECK-NEXT:      %p = arith.mulf %g, %b : f32
// CHECK-NEXT:      ix.yield %p : f32
// CHECK-NEXT:    }
// CHECK-NEXT:    func.return %dx : tensor<8xf32>
