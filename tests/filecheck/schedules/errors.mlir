// A schedule that does not fit its op is one message naming the directive and why, exit 1.
// RUN: not mlc-opt %s -p 'mlc-tile{split="d5:2"}' 2>&1 | filecheck %s --check-prefix=SPLIT
// RUN: not mlc-opt %s -p 'mlc-tile{order="r0,d0,d1"}' 2>&1 | filecheck %s --check-prefix=ORDER
// RUN: not mlc-opt %s -p 'mlc-tile{order="d0,d1,r1,r0"}' 2>&1 | filecheck %s --check-prefix=REDUCTIONS
// RUN: not mlc-opt %s -p 'mlc-tile{vectorize=d0}' 2>&1 | filecheck %s --check-prefix=INNERMOST
// RUN: not mlc-opt %s -p 'mlc-tile{order="d0,r0,r1,d1" parallel=r0}' 2>&1 | filecheck %s --check-prefix=RACE
// RUN: not mlc-opt %s -p 'mlc-tile{order="d0,r0,r1,d1" parallel=d1}' 2>&1 | filecheck %s --check-prefix=INSIDE
// RUN: not mlc-opt %s -p 'mlc-fuse{inline=true}' 2>&1 | filecheck %s --check-prefix=INLINE
// RUN: not mlc-opt %s -p 'mlc-tile{split="d0:2" order="d0i,d0o,d1,r0,r1"}' 2>&1 | filecheck %s --check-prefix=HALVES
// RUN: not mlc-opt %s -p 'mlc-tile{split="d1:70" unroll=d1i}' 2>&1 | filecheck %s --check-prefix=UNROLL
// RUN: not mlc-opt %s -p 'mlc-tile{ops=3}' 2>&1 | filecheck %s --check-prefix=OPS
func.func @sum2(%x: tensor<8x80x3x3xf32>) -> tensor<8x80xf32> {
  %y = ix.compute sum(r0: 3, r1: 3) (%x[d0, d1, r0, r1]) : (tensor<8x80x3x3xf32>) -> tensor<8x80xf32> {
  ^bb0(%a: f32):
    ix.yield %a : f32
  }
  func.return %y : tensor<8x80xf32>
}
// SPLIT:          mlc-tile: split(d5, 2): d5 is not a loop of this op (loops: d0, d1, r0, r1)
// ORDER:          mlc-tile: order(r0, d0, d1) must list every loop once (d0, d1, r0, r1): missing r1
// REDUCTIONS:     mlc-tile: order: the reduction loops must keep their order (r0, r1): reordering them would change the order of the sum, and so its value
// INNERMOST:      mlc-tile: vectorize(d0): must be the innermost loop (it is r1)
// RACE:           mlc-tile: parallel(r0): a reduction loop cannot run on threads (they would race on the sum)
// INSIDE:         mlc-tile: parallel(d1): runs inside the reduction loop r0
// INLINE:         mlc-fuse: inline: the op has a reduction; compute it at(...) a loop of its reader instead
// HALVES:         mlc-tile: order: d0i runs outside d0o, the outer half of its split of d0; the outer half must come first
// UNROLL:         mlc-tile: unroll(d1i): 70 iterations, more than 64
// OPS:            mlc-tile: @sum2 has 1 ix.compute ops; there is no op 3
