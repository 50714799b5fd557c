// RUN: mlc-opt %s -p 'mlc-lower-loops{vector-bytes=16},cse' | filecheck %s

// The input gradient of a dense layer, dx[b, i] = sum_o dy[b, o] * w[i, o]: along the vector
// lanes (i) the weight read w[i, o] is strided. stage(0) copies w once, transposed (the dimension
// the lanes walk last) into a local buffer, so the lanes read it as contiguous vectors.
func.func @dx(%w: tensor<10x6xf32>, %dy: tensor<2x6xf32>) -> tensor<2x10xf32> {
  %y = ix.compute sum(r0: 6) (%w[d1, r0], %dy[d0, r0]) : (tensor<10x6xf32>, tensor<2x6xf32>) -> tensor<2x10xf32> attributes {mlc.schedule = #ix.schedule<split(d1, 8), order(d0, d1o, r0, d1i), vectorize(d1i), stage(0)>} {
  ^bb0(%p: f32, %q: f32):
    %m = arith.mulf %q, %p : f32
    ix.yield %m : f32
  }
  func.return %y : tensor<2x10xf32>
}
// The block spans two vector blocks of 8 (16 columns, 6 beyond w filled with the read's 0).
// CHECK-LABEL: func.func @dx
// CHECK:         %[[T:.*]] = memref.alloca() {{.*}} : memref<6x16xf32>
// CHECK:         scf.for %[[O:[0-9]+]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK:           scf.for %[[I:[0-9]+]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK:             %[[IN:.*]] = arith.cmpi ult, %[[I]], %{{.*}} : index
// CHECK:             %[[W:.*]] = memref.load %w[%{{.*}}, %[[O]]] : memref<10x6xf32>
// CHECK:             %[[V:.*]] = arith.select %[[IN]], %[[W]], %{{.*}} : f32
// CHECK-NEXT:        memref.store %[[V]], %[[T]][%[[O]], %[[I]]] : memref<6x16xf32>
// CHECK:         scf.for %[[B:[0-9]+]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK:           scf.for %[[R:[0-9]+]] = %{{.*}} to %{{.*}} step %{{.*}} iter_args
// CHECK:             vector.load %[[T]][%[[R]], %{{.*}}] : memref<6x16xf32>, vector<4xf32>
// CHECK:             memref.load %dy[%[[B]], %[[R]]] : memref<2x6xf32>
// CHECK:             math.fma %{{.*}}, %{{.*}}, %{{.*}} : vector<4xf32>

// A staged copy of 256 KiB or more made before the nest runs its outermost loop in parallel
// (the copy is memory-bound; each thread copies whole rows of the buffer).
func.func @dx_large(%w: tensor<256x256xf32>, %dy: tensor<2x256xf32>) -> tensor<2x256xf32> {
  %y = ix.compute sum(r0: 256) (%w[d1, r0], %dy[d0, r0]) : (tensor<256x256xf32>, tensor<2x256xf32>) -> tensor<2x256xf32> attributes {mlc.schedule = #ix.schedule<order(d0, r0, d1), vectorize(d1), stage(0)>} {
  ^bb0(%p: f32, %q: f32):
    %m = arith.mulf %q, %p : f32
    ix.yield %m : f32
  }
  func.return %y : tensor<2x256xf32>
}
// CHECK-LABEL: func.func @dx_large
// CHECK:         %[[T:.*]] = memref.alloca() {{.*}} : memref<256x256xf32>
// CHECK-NEXT:    scf.for %[[O:[0-9]+]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK:           memref.load %w[%{{.*}}, %[[O]]] : memref<256x256xf32>
// CHECK:           memref.store %{{.*}}, %[[T]][%[[O]], %{{.*}}] : memref<256x256xf32>
// CHECK:         } {mlc.parallel}
