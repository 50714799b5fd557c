// RUN: mlc-opt %s -p mlc-lower-graph | filecheck %s

// Activations with options: the option is a constant of the element type in the body.
func.func @leaky(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = nn.leaky_relu %x {alpha = 2.000000e-01 : f64} : (tensor<4xf32>) -> tensor<4xf32>
  func.return %y : tensor<4xf32>
}
// CHECK-LABEL: func.func @leaky
// CHECK-NEXT:    %y = ix.compute (%x[d0]) : (tensor<4xf32>) -> tensor<4xf32> {
// CHECK-NEXT:    ^bb0(%[[X:.*]]: f32):
// CHECK-NEXT:      %[[ZERO:.*]] = arith.constant 0.000000e+00 : f32
// CHECK-NEXT:      %[[POS:.*]] = arith.cmpf ogt, %[[X]], %[[ZERO]] : f32
// CHECK-NEXT:      %[[ALPHA:.*]] = arith.constant 2.000000e-01 : f32
// CHECK-NEXT:      %[[NEG:.*]] = arith.mulf %[[ALPHA]], %[[X]] : f32
// CHECK-NEXT:      %[[Y:.*]] = arith.select %[[POS]], %[[X]], %[[NEG]] : f32
// CHECK-NEXT:      ix.yield %[[Y]] : f32

// hardtanh: lo on and below lo, hi on and above hi (so the slope is 0 on the edges).
func.func @hardtanh(%x: tensor<4xf64>) -> tensor<4xf64> {
  %y = nn.hardtanh %x {lo = -5.000000e-01 : f64, hi = 2.000000e+00 : f64} : (tensor<4xf64>) -> tensor<4xf64>
  func.return %y : tensor<4xf64>
}
// CHECK-LABEL: func.func @hardtanh
// CHECK:         %[[LOW:.*]] = arith.cmpf ole, %[[X:.*]], %{{.*}} : f64
// CHECK:         %[[HIGH:.*]] = arith.cmpf oge, %[[X]], %{{.*}} : f64
// CHECK-NEXT:    %[[HI:.*]] = arith.constant 2.000000e+00 : f64
// CHECK-NEXT:    %[[IN:.*]] = arith.select %[[HIGH]], %[[HI]], %[[X]] : f64
// CHECK-NEXT:    %{{.*}} = arith.select %[[LOW]], %{{.*}}, %[[IN]] : f64

// clamp: lo below lo, hi above hi (the slope is 1 on the edges).
func.func @clamp(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = nn.clamp %x {lo = -1.000000e+00 : f64, hi = 1.000000e+00 : f64} : (tensor<4xf32>) -> tensor<4xf32>
  func.return %y : tensor<4xf32>
}
// CHECK-LABEL: func.func @clamp
// CHECK:         arith.cmpf olt, %{{.*}}, %{{.*}} : f32
// CHECK:         arith.cmpf ogt, %{{.*}}, %{{.*}} : f32

// softplus: x above the threshold 20, else log(1 + exp(x)); the select never mixes in the
// branch not taken.
func.func @softplus(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = nn.softplus %x : (tensor<4xf32>) -> tensor<4xf32>
  func.return %y : tensor<4xf32>
}
// CHECK-LABEL: func.func @softplus
// CHECK:         %[[T:.*]] = arith.constant 2.000000e+01 : f32
// CHECK-NEXT:    %[[BIG:.*]] = arith.cmpf ogt, %[[X:.*]], %[[T]] : f32
// CHECK-NEXT:    %[[E:.*]] = math.exp %[[X]] : f32
// CHECK-NEXT:    %[[ONE:.*]] = arith.constant 1.000000e+00 : f32
// CHECK-NEXT:    %[[S:.*]] = arith.addf %[[ONE]], %[[E]] : f32
// CHECK-NEXT:    %[[L:.*]] = math.log %[[S]] : f32
// CHECK-NEXT:    %{{.*}} = arith.select %[[BIG]], %[[X]], %[[L]] : f32

// silu: x times the marked sigmoid (whose derivative is s(1 - s) in its result).
func.func @silu(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = nn.silu %x : (tensor<4xf32>) -> tensor<4xf32>
  func.return %y : tensor<4xf32>
}
// CHECK-LABEL: func.func @silu
// CHECK:         %[[S:.*]] = arith.divf %{{.*}}, %{{.*}} {mlc.sigmoid} : f32
// CHECK-NEXT:    %{{.*}} = arith.mulf %[[X:.*]], %[[S]] : f32

// pow: math.powf of the broadcast operands.
func.func @pow(%a: tensor<2x3xf32>, %b: tensor<3xf32>) -> tensor<2x3xf32> {
  %y = nn.pow %a, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  func.return %y : tensor<2x3xf32>
}
// CHECK-LABEL: func.func @pow
// CHECK-NEXT:    %y = ix.compute (%a[d0, d1], %b[d1]) : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32> {
// CHECK-NEXT:    ^bb0(%[[A:.*]]: f32, %[[B:.*]]: f32):
// CHECK-NEXT:      %[[P:.*]] = math.powf %[[A]], %[[B]] : f32
// CHECK-NEXT:      ix.yield %[[P]] : f32

// erf: math.erf (mlc's own in f32 C, libm's in f64).
func.func @erf(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = nn.erf %x : (tensor<4xf32>) -> tensor<4xf32>
  func.return %y : tensor<4xf32>
}
// CHECK-LABEL: func.func @erf
// CHECK-NEXT:    %y = ix.compute (%x[d0]) : (tensor<4xf32>) -> tensor<4xf32> {
// CHECK-NEXT:    ^bb0(%[[X:.*]]: f32):
// CHECK-NEXT:      %[[E:.*]] = math.erf %[[X]] : f32
// CHECK-NEXT:      ix.yield %[[E]] : f32

// gelu: x * 0.5 * (1 + erf(x * (1 / sqrt 2))), in PyTorch's order.
func.func @gelu(%x: tensor<4xf64>) -> tensor<4xf64> {
  %y = nn.gelu %x : (tensor<4xf64>) -> tensor<4xf64>
  func.return %y : tensor<4xf64>
}
// CHECK-LABEL: func.func @gelu
// CHECK:         %[[HALF:.*]] = arith.mulf %[[X:.*]], %{{.*}} : f64
// CHECK-NEXT:    %[[C:.*]] = arith.constant 0.70710678118654757 : f64
// CHECK-NEXT:    %[[S:.*]] = arith.mulf %[[X]], %[[C]] : f64
// CHECK-NEXT:    %[[E:.*]] = math.erf %[[S]] : f64
// CHECK-NEXT:    %[[ONE:.*]] = arith.constant 1.000000e+00 : f64
// CHECK-NEXT:    %[[P:.*]] = arith.addf %[[ONE]], %[[E]] : f64
// CHECK-NEXT:    %[[Y:.*]] = arith.mulf %[[HALF]], %[[P]] : f64
// CHECK-NEXT:    ix.yield %[[Y]] : f64

// gelu's tanh form: 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3))).
func.func @gelu_tanh(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = nn.gelu %x {approximate = "tanh"} : (tensor<4xf32>) -> tensor<4xf32>
  func.return %y : tensor<4xf32>
}
// CHECK-LABEL: func.func @gelu_tanh
// CHECK:         %[[X2:.*]] = arith.mulf %[[X:.*]], %[[X]] : f32
// CHECK-NEXT:    %[[X3:.*]] = arith.mulf %[[X2]], %[[X]] : f32
// CHECK-NEXT:    %[[K:.*]] = arith.constant 4.471500e-02 : f32
// CHECK-NEXT:    %[[KX3:.*]] = arith.mulf %[[K]], %[[X3]] : f32
// CHECK-NEXT:    %[[SUM:.*]] = arith.addf %[[X]], %[[KX3]] : f32
// CHECK-NEXT:    %[[B:.*]] = arith.constant 0.797884583 : f32
// CHECK-NEXT:    %[[IN:.*]] = arith.mulf %[[B]], %[[SUM]] : f32
// CHECK:         %[[T:.*]] = math.tanh %[[IN]] : f32

// clamp with tensor bounds: the three operands broadcast; below lo the bound that wins (and,
// at lo == hi, a detached value: torch.clamp gives no gradient there).
func.func @clamp_tensor(%x: tensor<2x3xf32>, %lo: tensor<3xf32>, %hi: tensor<f32>) -> tensor<2x3xf32> {
  %y = nn.clamp_tensor %x, %lo, %hi : (tensor<2x3xf32>, tensor<3xf32>, tensor<f32>) -> tensor<2x3xf32>
  func.return %y : tensor<2x3xf32>
}
// CHECK-LABEL: func.func @clamp_tensor
// CHECK-NEXT:    %y = ix.compute (%x[d0, d1], %lo[d1], %hi[]) : (tensor<2x3xf32>, tensor<3xf32>, tensor<f32>) -> tensor<2x3xf32> {
// CHECK-NEXT:    ^bb0(%[[X:.*]]: f32, %[[LO:.*]]: f32, %[[HI:.*]]: f32):
// CHECK-NEXT:      %[[LT:.*]] = arith.cmpf olt, %[[LO]], %[[HI]] : f32
// CHECK-NEXT:      %[[GT:.*]] = arith.cmpf ogt, %[[LO]], %[[HI]] : f32
// CHECK-NEXT:      %[[TIE:.*]] = arith.maximumf %[[LO]], %[[LO]] {mlc.detached} : f32
// CHECK-NEXT:      %[[B1:.*]] = arith.select %[[GT]], %[[HI]], %[[TIE]] : f32
// CHECK-NEXT:      %[[BELOW:.*]] = arith.select %[[LT]], %[[LO]], %[[B1]] : f32
// CHECK-NEXT:      %[[UNDER:.*]] = arith.cmpf olt, %[[X]], %[[LO]] : f32
// CHECK-NEXT:      %[[OVER:.*]] = arith.cmpf ogt, %[[X]], %[[HI]] : f32
// CHECK-NEXT:      %[[IN:.*]] = arith.select %[[OVER]], %[[HI]], %[[X]] : f32
// CHECK-NEXT:      %[[Y:.*]] = arith.select %[[UNDER]], %[[BELOW]], %[[IN]] : f32
// CHECK-NEXT:      ix.yield %[[Y]] : f32
