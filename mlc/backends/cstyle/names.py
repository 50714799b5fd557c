"""C identifiers from IR names: any name the language accepts must compile, whatever C calls it.

Two kinds of names reach the C source:

* **Values** (`%x`, a parameter's hint): printed as `<hint>_<n>` with a counter (`core.define`).
  The suffix `_<digits>` keeps them apart from each other and from every keyword, library
  function and macro of the headers mlc includes (none of those ends in `_<digits>`).
* **Functions** (a model `@m`): exported as `m`, `m_packed` and `m_arena_bytes`, so `m` is
  the name a user sees, from Python or from C. `c_symbol` keeps it unless it is reserved: a
  keyword of C or GCC, a name the included headers declare or define (`exp`, `memcpy`, `NULL`,
  `int8_t`), a name reserved to the implementation (leading `_`) or to mlc's own helpers (`mlc_`),
  or a name whose exported companions would collide with another function's (`*_packed`,
  `*_arena_bytes`). A reserved name gains a trailing `_`, and so does any name already ending in
  `_`, which makes the mapping one to one: `int` -> `int_`, `int_` -> `int__`.

The linker binds the library's own calls to its own functions (`-Wl,-Bsymbolic`, see
`backends/c/runtime.py`), so an exported name that another library of the process also exports
(NumPy's, Python's) is still harmless.

`tests/test_names.py` preprocesses the headers with the system C compiler and checks that every
identifier they declare is in `RESERVED`.
"""

from __future__ import annotations

import re

C_KEYWORDS = frozenset(
    # C89 to C23, and GNU C's own spellings without underscores.
    "auto break case char const continue default do double else enum extern float for goto if "
    "inline int long register restrict return short signed sizeof static struct switch typedef "
    "union unsigned void volatile while bool true false nullptr alignas alignof constexpr "
    "static_assert thread_local typeof typeof_unqual asm".split()
)

_MATH_FUNCTIONS = (
    "acos acosh asin asinh atan atan2 atanh cbrt ceil copysign cos cosh erf erfc exp exp2 expm1 "
    "fabs fdim floor fma fmax fmin fmod frexp hypot ilogb ldexp lgamma llrint llround log log10 "
    "log1p log2 logb lrint lround modf nan nearbyint nextafter nexttoward pow remainder remquo rint "
    "round scalbln scalbn sin sinh sqrt tan tanh tgamma trunc"
).split()
"""<math.h>'s functions; each also comes as `<name>f` (float) and `<name>l` (long double)."""

C_LIBRARY = frozenset(
    [f"{name}{suffix}" for name in _MATH_FUNCTIONS for suffix in ("", "f", "l")]
    + (
        # <math.h> macros and types
        "fpclassify isfinite isgreater isgreaterequal isinf isless islessequal islessgreater isnan "
        "isnormal isunordered signbit math_errhandling double_t float_t HUGE_VAL HUGE_VALF "
        "HUGE_VALL INFINITY NAN FP_FAST_FMA FP_FAST_FMAF FP_FAST_FMAL FP_ILOGB0 FP_ILOGBNAN "
        "FP_INFINITE FP_NAN FP_NORMAL FP_SUBNORMAL FP_ZERO MATH_ERREXCEPT MATH_ERRNO errno "
        # <stdlib.h>
        "abort abs atexit atof atoi atol atoll bsearch calloc div exit free getenv labs ldiv "
        "llabs lldiv malloc posix_memalign mblen mbstowcs mbtowc qsort quot rand realloc rem srand strtod strtof "
        "strtol strtold strtoll strtoul strtoull system wcstombs wctomb div_t ldiv_t lldiv_t "
        "EXIT_FAILURE EXIT_SUCCESS MB_CUR_MAX RAND_MAX "
        # <string.h>
        "memchr memcmp memcpy memmove memset strcat strchr strcmp strcoll strcpy strcspn strerror "
        "strlen strncat strncmp strncpy strpbrk strrchr strspn strstr strtok strxfrm "
        # <stddef.h>, <stdint.h> (the `*_t` types are reserved by their suffix)
        "NULL offsetof PTRDIFF_MAX PTRDIFF_MIN SIZE_MAX SIG_ATOMIC_MAX SIG_ATOMIC_MIN WCHAR_MAX "
        "WCHAR_MIN WINT_MAX WINT_MIN INTMAX_C INTMAX_MAX INTMAX_MIN UINTMAX_C UINTMAX_MAX "
        "INTPTR_MAX INTPTR_MIN UINTPTR_MAX "
        # what the generated code itself uses by name: the packed entry's parameter, OpenMP
        "args omp_get_num_threads omp_get_thread_num omp_set_num_threads "
        # the C entry point and the library names every program links against
        "main printf fprintf sprintf snprintf puts stdin stdout stderr assert"
    ).split()
)

_STDINT_MACRO = re.compile(r"U?INT(_LEAST|_FAST)?(8|16|32|64)_(C|MAX|MIN)")

RESERVED_SUFFIXES = ("_t", "_packed", "_arena_bytes")
RESERVED_PREFIXES = ("_", "mlc_")


def is_reserved(name: str) -> bool:
    """Whether `name` may not be used as it is for an exported C function."""
    return (
        name in C_KEYWORDS
        or name in C_LIBRARY
        or _STDINT_MACRO.fullmatch(name) is not None
        or name.startswith(RESERVED_PREFIXES)
        or name.endswith(RESERVED_SUFFIXES)
    )


def c_symbol(name: str) -> str:
    """The C name of the function `@name`: `name` itself unless that is reserved (or ends in `_`),
    else `name_` (one to one, see the module docstring)."""
    if not re.fullmatch(r"[A-Za-z_]\w*", name, flags=re.ASCII):
        raise ValueError(f"function name '{name}' is not a C identifier")
    return f"{name}_" if is_reserved(name) or name.endswith("_") else name


def c_identifier(name: str) -> str:
    """A C identifier made from an IR name hint (letters, digits, underscores); `define` adds the
    counter suffix that keeps it clear of reserved names."""
    text = re.sub(r"\W", "_", name, flags=re.ASCII)
    return text if text and text[0].isalpha() else f"v{text}"
