"""The graph level: one op per layer (`mlc.dialects.nn`) in model functions.

`signature`: the contract of a model function, which every frontend writes and every later stage
reads: its parameters, inputs, state and outputs by name and role, and their initialisers.
"""
