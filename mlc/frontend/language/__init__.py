"""The mlc language (`.mlc` files): grammar, AST, parser, and the emitter to the graph dialect.

`parser` turns text into the AST of `ast`; `emit` turns a model's AST into a `func.func` of
`nn` ops, with `builtins` (the layer calls) and `custom_ops` (ops in index notation, emitted as
`ix.compute`).
"""
