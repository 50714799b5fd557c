// RUN: mlc-opt %s -p '' -t c | filecheck %s
// RUN: mlc-opt %s -p '' -t c > %t.c && cc -std=c99 -Wall -Werror -Wno-unused-variable -fopenmp -c %t.c -o %t.o
// RUN: cc -std=c99 -Wall -Werror -Wno-unused-variable -fopenmp -mavx2 -mfma -c %t.c -o %t.o
// RUN: cc -std=c99 -Wall -Werror -Wno-unused-variable -fopenmp -mavx512f -c %t.c -o %t.o

// Vectors are GCC vector extensions: loads and stores are memcpy (any alignment), arithmetic
// is C operators, a fused multiply-add is the target's instruction where the compiler has one
// (the builtin that <immintrin.h> would wrap: the C includes no intrinsics header),
// a lanewise selection blends with the mask of a comparison, exp is mlc's own (the same
// algorithm as for scalars), and a parallel loop is an OpenMP parallel for.
func.func @k(%x: memref<4x8xf32>, %y: memref<4x8xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %zero = arith.constant 0.000000e+00 : f32
  scf.for %i = %c0 to %c4 step %c1 {
    %v = vector.load %x[%i, %c0] : memref<4x8xf32>, vector<8xf32>
    %z = vector.broadcast %zero : f32 to vector<8xf32>
    %f = math.fma %v, %v, %z : vector<8xf32>
    %gt = vx.cmpf ogt, %f, %z : vector<8xf32>
    %r = vx.select %gt, %f, %z : vector<8xf32>
    %e = math.exp %r : vector<8xf32>
    vector.store %e, %y[%i, %c0] : memref<4x8xf32>, vector<8xf32>
  } {mlc.parallel}
  func.return
}
// CHECK-NOT:  immintrin
// CHECK:      #pragma GCC diagnostic ignored "-Wpsabi"
// CHECK-DAG:  typedef float mlc_v8f32 __attribute__((vector_size(32)));
// CHECK-DAG:  typedef int32_t mlc_v8i32 __attribute__((vector_size(32)));
// CHECK:      static inline mlc_v8f32 mlc_fma_v8f32(mlc_v8f32 a, mlc_v8f32 b, mlc_v8f32 c) {
// CHECK-NEXT: #if defined(__FMA__)
// CHECK-NEXT:   return __builtin_ia32_vfmaddps256(a, b, c);
// CHECK-NEXT: #else
// CHECK:      static inline mlc_v8f32 mlc_expf_v8f32(mlc_v8f32 x) {
// CHECK:      void k(const float* restrict x_0, float* restrict y_1) {
// CHECK-NEXT:   #pragma omp parallel for schedule(static)
// CHECK-NEXT:   for (intptr_t [[I:.*]] = 0; [[I]] < 4; [[I]] += 1) {
// CHECK-NEXT:     mlc_v8f32 [[V:.*]];
// CHECK-NEXT:     memcpy(&[[V]], &x_0[[[I]]*8 + 0], sizeof [[V]]);
// CHECK-NEXT:     mlc_v8f32 [[Z:.*]] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
// CHECK-NEXT:     mlc_v8f32 [[F:.*]] = mlc_fma_v8f32([[V]], [[V]], [[Z]]);
// CHECK-NEXT:     mlc_v8i32 [[GT:.*]] = [[F]] > [[Z]];
// CHECK-NEXT:     mlc_v8f32 [[R:.*]] = (mlc_v8f32)(([[GT]] & (mlc_v8i32)[[F]]) | (~([[GT]]) & (mlc_v8i32)[[Z]]));
// CHECK-NEXT:     mlc_v8f32 [[E:.*]] = mlc_expf_v8f32([[R]]);
// CHECK-NEXT:     memcpy(&y_1[[[I]]*8 + 0], &[[E]], sizeof [[E]]);
// CHECK-NEXT:   }
