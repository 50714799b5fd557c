// RUN: mlc-opt %s | filecheck %s
// RUN: MLC_ROUNDTRIP

// Schedules print and parse as #ix.schedule<directives>, in a fixed order; vx ops round-trip.
func.func @f(%x: tensor<8x16xf32>, %v: vector<4xf32>) -> (tensor<8xf32>, vector<4xf32>) {
  %y = ix.compute sum(r0: 16) (%x[d0, r0]) : (tensor<8x16xf32>) -> tensor<8xf32> attributes {mlc.schedule = #ix.schedule<unroll(d0i), split(d0, 4), order(d0o, r0, d0i), parallel(d0o)>} {
  ^bb0(%a: f32):
    ix.yield %a : f32
  }
  %t = ix.compute (%x[d0, d1]) : (tensor<8x16xf32>) -> tensor<8x16xf32> attributes {mlc.schedule = #ix.schedule<inline>} {
  ^bb0(%a: f32):
    ix.yield %a : f32
  }
  %m = vx.cmpf olt, %v, %v : vector<4xf32>
  %s = vx.select %m, %v, %v : vector<4xf32>
  func.return %y, %s : tensor<8xf32>, vector<4xf32>
}
// CHECK: mlc.schedule = #ix.schedule<split(d0, 4), order(d0o, r0, d0i), parallel(d0o), unroll(d0i)>
// CHECK: mlc.schedule = #ix.schedule<inline>
// CHECK: %m = vx.cmpf olt, %v, %v : vector<4xf32>
// CHECK: %s = vx.select %m, %v, %v : vector<4xf32>
