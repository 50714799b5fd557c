// RUN: mlc-opt %s -p mlc-lower-loops,mlc-plan-memory | filecheck %s

// a dies once b is computed, so c reuses a's bytes; d is computed while b and c are still read,
// so it needs fresh bytes: four 128-byte temporaries in a 384-byte arena, the last argument.
// The report: b, c and d are live together (384 bytes, no phases: all temporaries); @chain is not
// a model function, so its argument x counts as an input and the written one as an output.
func.func @chain(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %a = ix.compute (%x[d0, d1]) : (tensor<4x8xf32>) -> tensor<4x8xf32> {
  ^bb0(%v: f32):
    ix.yield %v : f32
  }
  %b = ix.compute (%a[d0, d1]) : (tensor<4x8xf32>) -> tensor<4x8xf32> {
  ^bb0(%v: f32):
    ix.yield %v : f32
  }
  %c = ix.compute (%b[d0, d1]) : (tensor<4x8xf32>) -> tensor<4x8xf32> {
  ^bb0(%v: f32):
    ix.yield %v : f32
  }
  %d = ix.compute (%c[d0, d1], %b[d0, d1]) : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32> {
  ^bb0(%v: f32, %w: f32):
    %s = arith.addf %v, %w : f32
    ix.yield %s : f32
  }
  %e = ix.compute (%d[d0, d1]) : (tensor<4x8xf32>) -> tensor<4x8xf32> {
  ^bb0(%v: f32):
    ix.yield %v : f32
  }
  func.return %e : tensor<4x8xf32>
}
// CHECK-LABEL: func.func @chain(%x: memref<4x8xf32>, %{{.*}}: memref<4x8xf32>, %arena: memref<384xi8>)
// CHECK-SAME:    attributes {mlc.arena_bytes = 384 : i64, mlc.memory = {arena = 384 : i64, peak_saved = 0 : i64, peak_temporaries = 384 : i64,
// CHECK-SAME:    params = 0 : i64, optimizer_state = 0 : i64, inputs = 128 : i64, outputs = 128 : i64, total_peak = 640 : i64, recompute_macs = 0 : i64}}
// CHECK-NOT:     memref.alloc
// CHECK:         %[[OA:offset.*]] = arith.constant 0 : index
// CHECK-NEXT:    %[[A:.*]] = memref.view %arena[%[[OA]]][] : memref<384xi8> to memref<4x8xf32>
// CHECK:         %[[OB:offset.*]] = arith.constant 128 : index
// CHECK-NEXT:    %[[B:.*]] = memref.view %arena[%[[OB]]][] : memref<384xi8> to memref<4x8xf32>
// CHECK:         %[[OC:offset.*]] = arith.constant 0 : index
// CHECK-NEXT:    %[[C:.*]] = memref.view %arena[%[[OC]]][] : memref<384xi8> to memref<4x8xf32>
// CHECK:         %[[OD:offset.*]] = arith.constant 256 : index
// CHECK-NEXT:    %[[D:.*]] = memref.view %arena[%[[OD]]][] : memref<384xi8> to memref<4x8xf32>
// CHECK-NOT:     memref.dealloc
