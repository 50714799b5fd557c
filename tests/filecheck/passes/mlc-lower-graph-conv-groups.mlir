// RUN: mlc-opt %s -p mlc-lower-graph | filecheck %s
// RUN: mlc-opt %s -p mlc-lower-graph,mlc-auto-schedule{vector-bytes=32} | filecheck %s --check-prefix=SCHEDULE
// RUN: mlc-opt %s -p 'mlc-lower-graph,mlc-auto-schedule{vector-bytes=32 threads=1},mlc-lower-loops{vector-bytes=32},canonicalize,cse' | filecheck %s --check-prefix=LOOPS

// Grouped: filter f of group f floordiv Fg (Fg = 3 filters per group) reads its group's Cg = 2
// channels, (f floordiv 3) * 2 + c.
func.func @grouped(%x: tensor<1x5x5x4xf32>, %w: tensor<3x3x2x6xf32>) -> tensor<1x3x3x6xf32> {
  %y = nn.conv2d %x, %w {stride = array<i64: 1, 1>, padding = array<i64: 0, 0, 0, 0>, dilation = array<i64: 1, 1>, groups = 2 : i64} : (tensor<1x5x5x4xf32>, tensor<3x3x2x6xf32>) -> tensor<1x3x3x6xf32>
  func.return %y : tensor<1x3x3x6xf32>
}
// CHECK-LABEL: func.func @grouped
// CHECK-NEXT:    %y = ix.compute sum(r0: 3, r1: 3, r2: 2) (%x[d0, d1 + r0, d2 + r1, d3 floordiv 3 * 2 + r2], %w[r0, r1, r2, d3])

// Depthwise (one filter per channel): the channel is the filter, no division, so the vector
// lanes along f read x contiguously.
func.func @depthwise(%x: tensor<1x9x9x32xf32>, %w: tensor<3x3x1x32xf32>) -> tensor<1x9x9x32xf32> {
  %y = nn.conv2d %x, %w {stride = array<i64: 1, 1>, padding = array<i64: 1, 1, 1, 1>, dilation = array<i64: 1, 1>, groups = 32 : i64} : (tensor<1x9x9x32xf32>, tensor<3x3x1x32xf32>) -> tensor<1x9x9x32xf32>
  func.return %y : tensor<1x9x9x32xf32>
}
// CHECK-LABEL: func.func @depthwise
// CHECK-NEXT:    %y = ix.compute sum(r0: 3, r1: 3, r2: 1) (%x[d0, d1 + r0 - 1, d2 + r1 - 1, d3 + r2], %w[r0, r1, r2, d3])
// SCHEDULE-LABEL: func.func @depthwise
// SCHEDULE:         vectorize(d3

// Without groups the IR is as before (no groups property).
func.func @plain(%x: tensor<1x5x5x2xf32>, %w: tensor<3x3x2x4xf32>) -> tensor<1x3x3x4xf32> {
  %y = nn.conv2d %x, %w {stride = array<i64: 1, 1>, padding = array<i64: 0, 0, 0, 0>, dilation = array<i64: 1, 1>} : (tensor<1x5x5x2xf32>, tensor<3x3x2x4xf32>) -> tensor<1x3x3x4xf32>
  func.return %y : tensor<1x3x3x4xf32>
}
// CHECK-LABEL: func.func @plain
// CHECK-NEXT:    %y = ix.compute sum(r0: 3, r1: 3, r2: 2) (%x[d0, d1 + r0, d2 + r1, r2], %w[r0, r1, r2, d3])

// Grouped with Fg = 8 filters per group on 8-lane vectors: a vector of filters stays in one
// group, so its channel `d3 floordiv 8 * 8 + r2` is one value per vector: a scalar load
// broadcast to the lanes (from the padded copy of x), against a contiguous load of the filters.
func.func @grouped_lanes(%x: tensor<1x6x6x32xf32>, %w: tensor<3x3x8x32xf32>) -> tensor<1x6x6x32xf32> {
  %y = nn.conv2d %x, %w {stride = array<i64: 1, 1>, padding = array<i64: 1, 1, 1, 1>, dilation = array<i64: 1, 1>, groups = 4 : i64} : (tensor<1x6x6x32xf32>, tensor<3x3x8x32xf32>) -> tensor<1x6x6x32xf32>
  func.return %y : tensor<1x6x6x32xf32>
}
// SCHEDULE-LABEL: func.func @grouped_lanes
// SCHEDULE:         mlc.schedule = #ix.schedule<split(d2, 6), order(d0, d1, d2o, r0, r1, r2, d2i, d3), vectorize(d3), unroll(d2i), stage(0, d0)>
// LOOPS-LABEL: func.func @grouped_lanes
// LOOPS-NOT:     vector.insert
// LOOPS:         %[[X:.*]] = memref.load %{{.*}} : memref<1x8x8x32xf32>
// LOOPS-NEXT:    %[[W:.*]] = vector.load %w[{{.*}}] : memref<3x3x8x32xf32>, vector<8xf32>
// LOOPS-NEXT:    %[[XV:.*]] = vector.broadcast %[[X]] : f32 to vector<8xf32>
// LOOPS-NEXT:    math.fma %[[XV]], %[[W]], %{{.*}} : vector<8xf32>
// LOOPS-LABEL: func.func @grouped_narrow

// Fg = 4 filters per group: 8-lane vectors would cross groups, so they narrow to 4 lanes, named
// in the schedule.
func.func @grouped_narrow(%x: tensor<1x6x6x16xf32>, %w: tensor<3x3x4x16xf32>) -> tensor<1x6x6x16xf32> {
  %y = nn.conv2d %x, %w {stride = array<i64: 1, 1>, padding = array<i64: 1, 1, 1, 1>, dilation = array<i64: 1, 1>, groups = 4 : i64} : (tensor<1x6x6x16xf32>, tensor<3x3x4x16xf32>) -> tensor<1x6x6x16xf32>
  func.return %y : tensor<1x6x6x16xf32>
}
// SCHEDULE-LABEL: func.func @grouped_narrow
// SCHEDULE:         mlc.schedule = #ix.schedule<split(d2, 6), order(d0, d1, d2o, r0, r1, r2, d2i, d3), vectorize(d3, 4), unroll(d2i), stage(0, d0)>
// LOOPS-NOT:     vector.insert
// LOOPS:         math.fma %{{.*}}, %{{.*}}, %{{.*}} : vector<4xf32>
