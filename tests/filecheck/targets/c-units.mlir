// RUN: mlc-opt %s -p mlc-lower-loops,mlc-plan-memory -t "c{units=2 split_ops=1}" | filecheck %s
// RUN: mlc-opt %s -p mlc-lower-loops,mlc-plan-memory -t "c{split_ops=1}" | filecheck %s --check-prefix=OUTLINED
// RUN: mlc-opt %s -p mlc-lower-loops,mlc-plan-memory -t c | filecheck %s --check-prefix=ONE

// A function of more than `split_ops` ops, printed for two translation units: its loop nests
// become hidden functions, spread over the units by size, that take the buffers they read and
// define the arena views they use again; the function calls them in order. The runtime compiles
// the units in parallel compiler processes and links them into one library.
func.func @blur(%x: tensor<2x6xf64>, %s: tensor<f64>) -> tensor<2x6xf64> {
  %t = ix.compute (%x[d0, d1], %s[]) : (tensor<2x6xf64>, tensor<f64>) -> tensor<2x6xf64> {
  ^bb0(%a: f64, %b: f64):
    %e = math.exp %a : f64
    %m = arith.mulf %e, %b : f64
    ix.yield %m : f64
  }
  %y = ix.compute sum(r0: 3) (%t[d0, d1 + r0 - 1]) : (tensor<2x6xf64>) -> tensor<2x6xf64> {
  ^bb0(%a: f64):
    ix.yield %a : f64
  }
  func.return %y : tensor<2x6xf64>
}
// CHECK:       #include <math.h>
// CHECK:       /* ---- mlc: next translation unit ---- */
// CHECK:       __attribute__((visibility("hidden"))) void mlc_blur_nest0(const double* restrict [[X:x_[0-9]+]], const double* restrict [[S:s_[0-9]+]], uint8_t* [[A:arena_[0-9]+]]) {
// CHECK-NEXT:    double* restrict [[T:v[0-9]+]] = (double*)([[A]] + 0);
// CHECK:           [[T]][{{.*}}] =
// CHECK:       /* ---- mlc: next translation unit ---- */
// CHECK:       __attribute__((visibility("hidden"))) void mlc_blur_nest0(const double* restrict {{.*}});
// CHECK-NEXT:  __attribute__((visibility("hidden"))) void mlc_blur_nest1(uint8_t* {{arena_[0-9]+}}, double* restrict {{v[0-9]+}});
// CHECK:       __attribute__((visibility("hidden"))) void mlc_blur_nest1(
// CHECK:       const size_t blur_arena_bytes = 128;
// CHECK:       void blur(const double* restrict [[X0:x_[0-9]+]], const double* restrict [[S0:s_[0-9]+]], double* restrict [[Y0:v[0-9]+]], uint8_t* [[A0:arena_[0-9]+]]) {
// CHECK-NEXT:    /* ix.compute -> 2x6xf64 */
// CHECK-NEXT:    mlc_blur_nest0([[X0]], [[S0]], [[A0]]);
// CHECK-NEXT:    /* ix.compute sum(3) -> 2x6xf64 */
// CHECK-NEXT:    mlc_blur_nest1([[A0]], [[Y0]]);
// CHECK-NEXT:  }

// One unit: the nests are outlined all the same (GCC compiles them faster apart), in one file.
// OUTLINED-NOT: mlc: next translation unit
// OUTLINED:     void mlc_blur_nest0(
// OUTLINED:     void mlc_blur_nest1(
// OUTLINED:     void blur(

// Below `split_ops` (the default, 1500): one function.
// ONE-NOT:     mlc: next translation unit
// ONE-NOT:     mlc_blur_nest
// ONE:         void blur(
