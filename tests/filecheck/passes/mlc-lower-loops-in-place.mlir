// RUN: mlc-opt %s -p mlc-lower-loops | filecheck %s
// RUN: mlc-opt %s -p 'mlc-tile{func=blocked ops=2 split="d0:4"},mlc-fuse{func=blocked ops=0 inline=true},mlc-fuse{func=blocked ops=1 at=d0o},mlc-lower-loops' | filecheck %s --check-prefix=AT

// Results tied to arguments (`mlc.in_place`, as mlc-optimizer ties a step's updates): written
// into the argument's buffer when the op is the argument's last reader and reads it only at its
// own index; otherwise they stay results of their own.
//   new.a: read again by a later op (%later)   -> a result
//   new.b: the last reader, elementwise         -> written into %b
//   new.c: reads %c reversed                    -> a result
func.func @update(%a: tensor<4xf32>, %b: tensor<4xf32>, %c: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>)
    attributes {mlc.arg_names = ["a", "b", "c"], mlc.arg_kinds = ["param", "param", "param"], mlc.param_inits = ["", "", ""],
                mlc.output_names = ["new.a", "new.b", "new.c", "later"],
                mlc.in_place = {"new.a" = "a", "new.b" = "b", "new.c" = "c"}} {
  %na = ix.compute (%a[d0]) : (tensor<4xf32>) -> tensor<4xf32> {
  ^bb0(%x: f32):
    %y = arith.addf %x, %x : f32
    ix.yield %y : f32
  }
  %nb = ix.compute (%b[d0], %na[d0]) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32> {
  ^bb0(%x: f32, %z: f32):
    %y = arith.subf %x, %z : f32
    ix.yield %y : f32
  }
  %nc = ix.compute (%c[-d0 + 3]) : (tensor<4xf32>) -> tensor<4xf32> {
  ^bb0(%x: f32):
    %y = arith.negf %x : f32
    ix.yield %y : f32
  }
  %later = ix.compute (%a[d0]) : (tensor<4xf32>) -> tensor<4xf32> {
  ^bb0(%x: f32):
    %y = arith.mulf %x, %x : f32
    ix.yield %y : f32
  }
  func.return %na, %nb, %nc, %later : tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>
}
// CHECK:       func.func @update(%a: memref<4xf32>, %b: memref<4xf32>, %c: memref<4xf32>, %[[NA:[0-9]+]]: memref<4xf32>, %[[NC:[0-9]+]]: memref<4xf32>, %[[LATER:[0-9]+]]: memref<4xf32>)
// CHECK-SAME:    mlc.output_names = ["new.a", "new.c", "later"]
// CHECK-SAME:    mlc.updated_in_place = ["b"]
// CHECK-NOT:     mlc.in_place
// new.a into its own output
// CHECK:         memref.load %a
// CHECK:         memref.store %{{.*}}, %[[NA]]
// new.b: loaded from %b and stored back into %b, at the same index
// CHECK:         %[[B:.*]] = memref.load %b[%[[I:.*]]] : memref<4xf32>
// CHECK:         memref.store %{{.*}}, %b[%[[I]]] : memref<4xf32>
// CHECK:         memref.store %{{.*}}, %[[NC]]
// CHECK:         memref.store %{{.*}}, %[[LATER]]

// A tied update whose producer, computed at one of its loops, reads the argument (through an
// inlined op) reversed: a block of it is read before the update's later points are written, so
// the tie is refused and new.a stays a result.
func.func @blocked(%a: tensor<8xf32>) -> tensor<8xf32>
    attributes {mlc.arg_names = ["a"], mlc.arg_kinds = ["param"], mlc.param_inits = [""],
                mlc.output_names = ["new.a"], mlc.in_place = {"new.a" = "a"}} {
  %r = ix.compute (%a[-d0 + 7]) : (tensor<8xf32>) -> tensor<8xf32> {
  ^bb0(%x: f32):
    ix.yield %x : f32
  }
  %p = ix.compute (%r[d0]) : (tensor<8xf32>) -> tensor<8xf32> {
  ^bb0(%x: f32):
    %y = arith.addf %x, %x : f32
    ix.yield %y : f32
  }
  %u = ix.compute (%a[d0], %p[d0]) : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32> {
  ^bb0(%x: f32, %z: f32):
    %y = arith.subf %x, %z : f32
    ix.yield %y : f32
  }
  func.return %u : tensor<8xf32>
}
// AT:      func.func @blocked(%a: memref<8xf32>, %{{.*}}: memref<8xf32>)
// AT-SAME: mlc.output_names = ["new.a"], mlc.updated_in_place = []
