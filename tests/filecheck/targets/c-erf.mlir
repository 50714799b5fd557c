// RUN: mlc-opt %s -p '' -t c | filecheck %s
// RUN: mlc-opt %s -p '' -t c > %t.c && cc -std=c99 -Wall -Werror -Wno-unused-variable -c %t.c -o %t.o

// erf on f32 is mlc's own, printed once for scalars and once per vector width from the same
// text (with the exp it uses), so that every lane computes what the scalar code does; on f64 it
// is libm's erf, lane by lane on vectors.
func.func @k(%x: memref<9xf32>, %y: memref<9xf32>, %a: memref<4xf64>, %b: memref<4xf64>) {
  %c0 = arith.constant 0 : index
  %c8 = arith.constant 8 : index
  %v = vector.load %x[%c0] : memref<9xf32>, vector<8xf32>
  %e = math.erf %v : vector<8xf32>
  vector.store %e, %y[%c0] : memref<9xf32>, vector<8xf32>
  %s = memref.load %x[%c8] : memref<9xf32>
  %t = math.erf %s : f32
  memref.store %t, %y[%c8] : memref<9xf32>
  %w = vector.load %a[%c0] : memref<4xf64>, vector<4xf64>
  %f = math.erf %w : vector<4xf64>
  vector.store %f, %b[%c0] : memref<4xf64>, vector<4xf64>
  func.return
}
// CHECK:      static inline mlc_v8f32 mlc_expf_v8f32(mlc_v8f32 x) {
// CHECK:      static inline mlc_v8f32 mlc_erff_v8f32(mlc_v8f32 x) {
// CHECK-NEXT:   mlc_v8f32 a = (mlc_v8f32)((mlc_v8i32)(x) & 0x7fffffff);
// CHECK-NEXT:   mlc_v8f32 z = a * a;
// CHECK-NEXT:   mlc_v8f32 near = a + a * ((((((-6.758787786e-04f) * z + 5.115657113e-03f) * z + -2.683527581e-02f) * z + 1.128338948e-01f) * z + -3.761262000e-01f) * z + 1.283791661e-01f);
// CHECK:        mlc_v8f32 far = 1.0f - mlc_expf_v8f32(-z) * (
// CHECK:      static inline float mlc_expf(float x) {
// CHECK:      static inline float mlc_erff(float x) {
// CHECK-NEXT:   float a = mlc_from_bits(mlc_bits(x) & 0x7fffffff);
// CHECK-NEXT:   float z = a * a;
// CHECK-NEXT:   float near = a + a * ((((((-6.758787786e-04f) * z + 5.115657113e-03f) * z + -2.683527581e-02f) * z + 1.128338948e-01f) * z + -3.761262000e-01f) * z + 1.283791661e-01f);
// CHECK:        float far = 1.0f - mlc_expf(-z) * (
// CHECK:      static inline mlc_v4f64 mlc_erf_v4f64(mlc_v4f64 a0) {
// CHECK-NEXT:   mlc_v4f64 r;
// CHECK-NEXT:   for (int l = 0; l < 4; l++) r[l] = erf(a0[l]);
// CHECK:      void k(
// CHECK:        mlc_v8f32 [[E:.*]] = mlc_erff_v8f32(
// CHECK:        float [[T:.*]] = mlc_erff(
// CHECK:        mlc_v4f64 [[F:.*]] = mlc_erf_v4f64(
