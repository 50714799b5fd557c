// RUN: mlc-opt %s -p mlc-lower-loops,mlc-plan-memory -t c | filecheck %s
// RUN: mlc-opt %s -p mlc-lower-loops,mlc-plan-memory -t c > %t.c && cc -std=c99 -Wall -Werror -Wno-unused-variable -c %t.c -o %t.o

// Loop-level IR printed as self-contained C99: one entry point per function, restrict pointers,
// flat row-major indexing straight into the buffers, branch-free guarded reads, the arena size
// exported.
func.func @blur(%x: tensor<2x6xf64>) -> tensor<2x6xf64> {
  %t = ix.compute (%x[d0, d1]) : (tensor<2x6xf64>) -> tensor<2x6xf64> {
  ^bb0(%a: f64):
    %e = math.exp %a : f64
    ix.yield %e : f64
  }
  %y = ix.compute sum(r0: 3) (%t[d0, d1 + r0 - 1]) : (tensor<2x6xf64>) -> tensor<2x6xf64> {
  ^bb0(%a: f64):
    ix.yield %a : f64
  }
  func.return %y : tensor<2x6xf64>
}
// CHECK:       #include <math.h>
// CHECK:       const size_t blur_arena_bytes = 128;
// CHECK:       void blur(const double* restrict x{{.*}}, double* restrict {{.*}}, uint8_t* arena{{.*}}) {
// CHECK:         double* restrict [[T:.*]] = (double*)(arena{{.*}} + 0);
// CHECK:         for (intptr_t [[I:.*]] = 0; [[I]] < 2; [[I]] += 1) {
// CHECK:           for (intptr_t [[J:.*]] = 0; [[J]] < 6; [[J]] += 1) {
// CHECK:             exp(
// CHECK:             [[T]][[[I]]*6 + [[J]]] =
// CHECK:               _Bool [[IN:.*]] = (uintptr_t){{.*}} < (uintptr_t)6;
// CHECK:               double [[V:.*]] = [[T]][{{.*}}];
// CHECK-NEXT:          double {{.*}} = [[IN]] ? [[V]] : 0.0;
