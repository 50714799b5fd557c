"""The examples of the language specification, shared by the frontend tests."""

DIGITS_CNN = """\
model digits_cnn {
  input  x: f32[32, 8, 8, 1]        # NHWC images
  input  y: f32[32, 10]             # one-hot labels
  param  w1: f32[3, 3, 1, 16] = glorot
  param  b1: f32[16] = zeros
  param  w2: f32[256, 10] = glorot
  param  b2: f32[10] = zeros

  h = relu(conv2d(x, w1, stride=1, padding=same) + b1)
  h = maxpool2d(h, size=2, stride=2)
  logits = dense(flatten(h), w2, b2)
  loss = softmax_cross_entropy(logits, y)
  output loss, logits
}
"""

CUSTOM_OPS = """\
op box3(x: f32[N, H, W, C]) -> f32[N, H - 2, W - 2, C] {
  out[n, i, j, c] = sum(a: 3, b: 3) x[n, i + a, j + b, c] / 9.0
}

op strided_corr(x: f32[N, H], w: f32[K]) -> f32[N, (H - K) / 2 + 1] {
  out[n, i] = sum(k: K) x[n, 2 * i + k] * w[k]
}
"""
