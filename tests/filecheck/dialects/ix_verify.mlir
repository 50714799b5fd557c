// RUN: mlc-opt %s --split-input-file --verify-diagnostics | filecheck %s

func.func @rank(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = ix.compute (%x[d0, d0]) : (tensor<4xf32>) -> tensor<4xf32> {
  ^bb0(%a: f32):
    ix.yield %a : f32
  }
  func.return %y : tensor<4xf32>
}
// CHECK: index map of input 0 has 2 results but the input has rank 1

// -----
func.func @yield_type(%x: tensor<4xf32>) -> tensor<4xf64> {
  %y = ix.compute (%x[d0]) : (tensor<4xf32>) -> tensor<4xf64> {
  ^bb0(%a: f32):
    ix.yield %a : f32
  }
  func.return %y : tensor<4xf64>
}
// CHECK: body yields f32 but the result element type is f64

// -----
func.func @index_range(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = ix.compute (%x[d0]) : (tensor<4xf32>) -> tensor<4xf32> {
  ^bb0(%a: f32):
    %i = ix.index 3
    ix.yield %a : f32
  }
  func.return %y : tensor<4xf32>
}
// CHECK: ix.index 3 is outside the 1 iteration variables
