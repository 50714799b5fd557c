"""The graph-level dialect `nn`: one op per built-in of the mlc language, on tensors.

Each op knows its own shape rule (`infer`), used twice: by the frontend to type a call (a
`ShapeError` there becomes a located diagnostic) and by the verifier to check IR read from text.
Layouts follow the language: activations NHWC, filters HWIO `[KH, KW, C, F]`. Paddings are
always explicit `[top, bottom, left, right]` here; the frontend resolves `same`/`valid`.

The ops live in submodules by kind (`layers`, `elementwise`, `shape_ops`, `reductions`, `losses`;
the `GraphOp` base and the shape helpers in `base`); this package gathers them and defines `NN`.
"""

from xdsl.ir import Dialect

from mlc.dialects.nn.base import (
    FORMAT_1,
    FORMAT_2,
    GraphOp,
    Shape,
    ShapeError,
    broadcast_shapes,
    fmt,
    same_padding,
    transposed_out,
    window_out,
)
from mlc.dialects.nn.elementwise import (
    ACTIVATIONS,
    BINARY,
    UNARY,
    AbsOp,
    ActivationOp,
    ClampOp,
    ClampTensorOp,
    EluOp,
    ErfOp,
    GeluOp,
    HardtanhOp,
    LeakyReluOp,
    MaximumOp,
    MinimumOp,
    PowOp,
    SiluOp,
    SoftplusOp,
    SquareOp,
    AddOp,
    BinaryOp,
    ConstantOp,
    DivOp,
    ExpOp,
    LogOp,
    MulOp,
    NegOp,
    ReluOp,
    SigmoidOp,
    SignOp,
    SqrtOp,
    SubOp,
    TanhOp,
    UnaryOp,
)
from mlc.dialects.nn.layers import AvgPool2DOp, BinConv2DOp, BinDenseOp, Conv2DOp, Conv2DTransposeOp, DenseOp, MatmulOp, MaxPool2DOp
from mlc.dialects.nn.losses import BCELogitsOp, BCEOp, KLNormalOp, LossOp, MSEOp, SoftmaxCrossEntropyOp
from mlc.dialects.nn.reductions import (
    BatchNormOp, LayerNormOp, LogSoftmaxOp, MaxOp, MeanOp, MinOp, RunningBatchNormOp, SoftmaxOp, SumOp,
)
from mlc.dialects.nn.shape_ops import BroadcastToOp, ConcatOp, PadOp, ReshapeOp, SliceOp, TransposeOp, UpsampleOp


NN = Dialect(
    "nn",
    [
        Conv2DOp, BinConv2DOp, BinDenseOp, Conv2DTransposeOp, DenseOp, MatmulOp, MaxPool2DOp, AvgPool2DOp, ReshapeOp, ConcatOp,
        TransposeOp, BroadcastToOp, SliceOp, PadOp, UpsampleOp,
        *UNARY.values(), GeluOp, *ACTIVATIONS.values(), ClampTensorOp, AddOp, SubOp, MulOp, DivOp, MaximumOp, MinimumOp, PowOp, ConstantOp, SumOp, MeanOp,
        MaxOp, MinOp, SoftmaxOp, LogSoftmaxOp, BatchNormOp, RunningBatchNormOp, LayerNormOp, MSEOp, BCEOp, BCELogitsOp,
        SoftmaxCrossEntropyOp, KLNormalOp,
    ],
    [],
)

__all__ = [
    "BroadcastToOp", "PadOp", "SliceOp", "TransposeOp", "UpsampleOp", "MaximumOp", "MinimumOp", "PowOp", "MaxOp", "MinOp", "LayerNormOp", "RunningBatchNormOp", "BCELogitsOp",
    "ACTIVATIONS", "ActivationOp", "ClampOp", "ClampTensorOp", "EluOp", "ErfOp", "GeluOp", "HardtanhOp", "LeakyReluOp", "SiluOp", "SoftplusOp", "SquareOp",
    "AbsOp", "AddOp", "AvgPool2DOp", "BCEOp", "BINARY", "BatchNormOp", "BinConv2DOp", "BinDenseOp", "BinaryOp", "ConcatOp",
    "ConstantOp", "Conv2DOp", "Conv2DTransposeOp", "DenseOp", "DivOp", "ExpOp", "FORMAT_1", "FORMAT_2", "GraphOp", "KLNormalOp", "LogOp",
    "LogSoftmaxOp", "LossOp", "MSEOp", "MatmulOp", "MaxPool2DOp", "MeanOp", "MulOp", "NN", "NegOp", "ReluOp",
    "ReshapeOp", "Shape", "ShapeError", "SigmoidOp", "SignOp", "SoftmaxCrossEntropyOp", "SoftmaxOp", "SqrtOp",
    "SubOp", "SumOp", "TanhOp", "UNARY", "UnaryOp", "broadcast_shapes", "fmt", "same_padding", "transposed_out", "window_out",
]  # fmt: skip
