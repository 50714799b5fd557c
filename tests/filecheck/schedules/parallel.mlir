// RUN: mlc-opt %s -p 'mlc-tile{parallel=d0},mlc-lower-loops,canonicalize,cse' | filecheck %s
// RUN: mlc-opt %s -p 'mlc-tile{parallel=d0},mlc-lower-loops,canonicalize,cse,mlc-plan-memory' -t c | filecheck %s --check-prefix=C

// parallel(d0): the rows are spread over threads. The loop is marked `mlc.parallel`; in C it is
// an OpenMP `parallel for`, and the reduction stays inside one thread, so the value of every
// sum is the same for any number of threads.
func.func @rowsum(%x: tensor<64x32xf32>) -> tensor<64xf32> {
  %y = ix.compute sum(r0: 32) (%x[d0, r0]) : (tensor<64x32xf32>) -> tensor<64xf32> {
  ^bb0(%a: f32):
    ix.yield %a : f32
  }
  func.return %y : tensor<64xf32>
}
// CHECK-LABEL: func.func @rowsum
// CHECK:         scf.for %[[I:[0-9]+]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NEXT:      %[[S:.*]] = scf.for %{{.*}} = %{{.*}} to %{{.*}} step %{{.*}} iter_args(%{{.*}} = %{{.*}}) -> (f32) {
// CHECK:           memref.store %[[S]], %{{.*}}[%[[I]]] : memref<64xf32>
// CHECK-NEXT:    } {mlc.parallel, mlc.nest = "ix.compute sum(32) -> 64xf32: parallel(d0)"}

// C:         /* ix.compute sum(32) -> 64xf32: parallel(d0) */
// C-NEXT:    #pragma omp parallel for schedule(static)
// C-NEXT:    for (intptr_t [[I:.*]] = 0; [[I]] < 64; [[I]] += 1) {
// C-NEXT:      float [[ACC:.*]] = 0.0f;
// C-NEXT:      for (intptr_t [[K:.*]] = 0; [[K]] < 32; [[K]] += 1) {
