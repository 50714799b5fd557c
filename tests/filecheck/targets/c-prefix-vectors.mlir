// RUN: mlc-opt %s -p '' -t c | filecheck %s
// RUN: mlc-opt %s -p '' -t c > %t.c && cc -std=c99 -Wall -Werror -Wno-unused-variable -c %t.c -o %t.o
// RUN: cc -std=c99 -Wall -Werror -Wno-unused-variable -mavx -c %t.c -o %t.o
// RUN: cc -std=c99 -Wall -Werror -Wno-unused-variable -mavx2 -mfma -c %t.c -o %t.o
// RUN: cc -std=c99 -Wall -Werror -Wno-unused-variable -mavx512f -mavx512vl -c %t.c -o %t.o

// A load or store of the first n lanes of a vector (a vector's worth of channels that ends
// inside it, e.g. 6 of 8) is a masked move on AVX-512 (through the compiler's builtins: the C
// includes no intrinsics header), AVX's `vmaskmov` with a lane mask read
// from a table on AVX and AVX2 (no AVX-512: without it, the `memcpy` through the stack that
// defeats store forwarding made such a loop several times slower), and `memcpy` without AVX.
// The pass-through lanes of a load are blended back in.
func.func @k(%x: memref<6xf32>, %y: memref<6xf32>, %a: memref<2xf64>, %b: memref<2xf64>) {
  %c0 = arith.constant 0 : index
  %n6 = arith.constant 6 : index
  %n2 = arith.constant 2 : index
  %m = vector.create_mask %n6 : vector<8xi1>
  %s = arith.constant 0.0 : f32
  %z = vector.broadcast %s : f32 to vector<8xf32>
  %v = vector.maskedload %x[%c0], %m, %z : memref<6xf32>, vector<8xi1>, vector<8xf32> into vector<8xf32>
  %w = arith.addf %v, %v : vector<8xf32>
  vector.maskedstore %y[%c0], %m, %w : memref<6xf32>, vector<8xi1>, vector<8xf32>
  %md = vector.create_mask %n2 : vector<4xi1>
  %sd = arith.constant 0.0 : f64
  %zd = vector.broadcast %sd : f64 to vector<4xf64>
  %u = vector.maskedload %a[%c0], %md, %zd : memref<2xf64>, vector<4xi1>, vector<4xf64> into vector<4xf64>
  vector.maskedstore %b[%c0], %md, %u : memref<2xf64>, vector<4xi1>, vector<4xf64>
  func.return
}
// CHECK-NOT:  immintrin
// CHECK:      typedef long long mlc_mask_v4f64 __attribute__((vector_size(32)));
// CHECK:      typedef int32_t mlc_mask_v8f32 __attribute__((vector_size(32)));
// CHECK:      static const int32_t mlc_lanes32[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
// CHECK-NEXT: static inline mlc_v8f32 mlc_load_prefix_v8f32(const float* p, mlc_v8f32 v, int n) {
// CHECK-NEXT: #if defined(__AVX512F__) && defined(__AVX512VL__)
// CHECK-NEXT:   return __builtin_ia32_loadups256_mask((const void*)p, v, (uint8_t)((1u << n) - 1u));
// CHECK-NEXT: #else
// CHECK-NEXT: #if defined(__AVX__)
// CHECK-NEXT:   mlc_mask_v8f32 m;
// CHECK-NEXT:   memcpy(&m, mlc_lanes32 + 8 - n, sizeof m);
// CHECK-NEXT:   return __builtin_ia32_blendvps256(v, __builtin_ia32_maskloadps256((const mlc_v8f32*)p, m), (mlc_v8f32)m);
// CHECK-NEXT: #else
// CHECK-NEXT:   memcpy(&v, p, (size_t)n * sizeof(float));
// CHECK:      static inline void mlc_store_prefix_v8f32(float* p, mlc_v8f32 v, int n) {
// CHECK:        __builtin_ia32_storeups256_mask((void*)p, v, (uint8_t)((1u << n) - 1u));
// CHECK:        __builtin_ia32_maskstoreps256((mlc_v8f32*)p, m, v);
// CHECK:      static const int64_t mlc_lanes64[8] = {-1, -1, -1, -1, 0, 0, 0, 0};
// CHECK-NEXT: static inline mlc_v4f64 mlc_load_prefix_v4f64(const double* p, mlc_v4f64 v, int n) {
// CHECK:        memcpy(&m, mlc_lanes64 + 4 - n, sizeof m);
// CHECK-NEXT:   return __builtin_ia32_blendvpd256(v, __builtin_ia32_maskloadpd256((const mlc_v4f64*)p, m), (mlc_v4f64)m);
// CHECK:      static inline void mlc_store_prefix_v4f64(double* p, mlc_v4f64 v, int n) {
// CHECK:        __builtin_ia32_maskstorepd256((mlc_v4f64*)p, m, v);
// CHECK:      void k(
// CHECK:        mlc_load_prefix_v8f32(&x_0[0], {{.*}}, 6);
// CHECK:        mlc_store_prefix_v8f32(&y_1[0], {{.*}}, 6);
// CHECK:        mlc_load_prefix_v4f64(&a_2[0], {{.*}}, 2);
// CHECK:        mlc_store_prefix_v4f64(&b_3[0], {{.*}}, 2);
