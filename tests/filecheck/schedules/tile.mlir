// RUN: mlc-opt %s -p 'mlc-tile{split="d0:4"}' | filecheck %s --check-prefix=ATTR
// RUN: mlc-opt %s -p 'mlc-tile{split="d0:4"},mlc-lower-loops,canonicalize,cse' | filecheck %s

// split(d0, 4) on 10 rows: a loop over the two full blocks of 4 rows with the inner loop of 4
// inside it, then one copy of the inner loop over the 2 remaining rows (no guard, no point
// computed twice). Row r = 4 * d0o + d0i.
func.func @rowsum(%x: tensor<10x3xf32>) -> tensor<10xf32> {
  %y = ix.compute sum(r0: 3) (%x[d0, r0]) : (tensor<10x3xf32>) -> tensor<10xf32> {
  ^bb0(%a: f32):
    ix.yield %a : f32
  }
  func.return %y : tensor<10xf32>
}
// ATTR: ix.compute sum(r0: 3) (%x[d0, r0]) : (tensor<10x3xf32>) -> tensor<10xf32> attributes {mlc.schedule = #ix.schedule<split(d0, 4)>}

// CHECK-LABEL: func.func @rowsum
// CHECK-DAG:     %[[C0:.*]] = arith.constant 0 : index
// CHECK-DAG:     %[[C2:.*]] = arith.constant 2 : index
// CHECK-DAG:     %[[C4:.*]] = arith.constant 4 : index
// CHECK-DAG:     %[[C8:.*]] = arith.constant 8 : index
// CHECK:         scf.for %[[O:.*]] = %[[C0]] to %[[C2]] step %{{.*}} {
// CHECK-NEXT:      scf.for %[[I:.*]] = %[[C0]] to %[[C4]] step %{{.*}} {
// CHECK-NEXT:        scf.for %[[R:.*]] = %[[C0]] to %{{.*}} step %{{.*}} iter_args
// CHECK-NEXT:          %[[BASE:.*]] = arith.muli %[[O]], %[[C4]] : index
// CHECK-NEXT:          %[[ROW:.*]] = arith.addi %[[BASE]], %[[I]] : index
// CHECK-NEXT:          memref.load %x[%[[ROW]], %[[R]]] : memref<10x3xf32>
// CHECK:         } {mlc.nest = "ix.compute sum(3) -> 10xf32: split(d0, 4)"}
// CHECK-NEXT:    scf.for %[[T:.*]] = %[[C0]] to %[[C2]] step %{{.*}} {
// CHECK-NEXT:      scf.for %[[TR:.*]] = %[[C0]] to %{{.*}} step %{{.*}} iter_args
// CHECK-NEXT:        %[[TROW:.*]] = arith.addi %[[T]], %[[C8]] : index
// CHECK-NEXT:        memref.load %x[%[[TROW]], %[[TR]]] : memref<10x3xf32>
