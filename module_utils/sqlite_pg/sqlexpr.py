"""SQLite SQL text as tokens, and a conservative translation of expressions to PostgreSQL.

Only what means the same thing on both sides is translated: column references, text and
decimal literals, comparisons, AND/OR/NOT, IN, BETWEEN, IS [NOT] NULL, CASE, ``+ - * ||``
and a few functions (``lower upper length abs trim coalesce ifnull``). Anything else
(``/`` and ``%``, whose integer rules differ, LIKE and GLOB, CAST, date functions,
subqueries, parameters, COLLATE) raises ``Untranslatable`` with the reason, so the caller
names the rule instead of changing it. PostgreSQL is the last judge: a translation it
refuses (a type mismatch such as ``flag = 1`` on a boolean) is named by the caller too.
"""

import re
from dataclasses import dataclass


class Untranslatable(Exception):
    """The SQLite text has no translation this module is sure of; str() says why."""


@dataclass(frozen=True)
class Token:
    kind: str    # word (unquoted name or keyword), name (quoted identifier), str, num, blob, op, param
    text: str    # as written
    value: str   # the name without quotes, the keyword upper-cased, the literal as written
    pos: int = 0  # where it starts in the text

    def is_word(self, *words):
        return self.kind == "word" and self.value in words

    def is_op(self, *ops):
        return self.kind == "op" and self.text in ops


_TOKEN = re.compile(r"""
    (?P<space>\s+|--[^\n]*(?:\n|$)|/\*.*?(?:\*/|$))
  | (?P<blob>[xX]'[^']*')
  | (?P<str>'(?:[^']|'')*')
  | (?P<name>"(?:[^"]|"")*"|`(?:[^`]|``)*`|\[[^\]]*\])
  | (?P<num>0[xX][0-9a-fA-F]+|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)
  | (?P<word>[^\W\d]\w*)
  | (?P<param>[?:@$]\w*)
  | (?P<op>\|\||<=|>=|==|!=|<>|<<|>>|[-+*/%<>=(),.;&|~])
""", re.VERBOSE | re.DOTALL)


def tokenize(text):
    """SQLite SQL as a list of Tokens (comments and spaces dropped)."""
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise Untranslatable(f"cannot read {text[pos:pos + 20]!r}")
        start, pos = pos, m.end()
        kind = m.lastgroup
        raw = m.group()
        if kind == "space":
            continue
        if kind == "name":
            value = raw[1:-1].replace(raw[0] * 2, raw[0]) if raw[0] != "[" else raw[1:-1]
        elif kind == "word":
            value = raw.upper()
        else:
            value = raw
        out.append(Token(kind, raw, value, start))
    return out


def split_top(tokens, sep=","):
    """Split tokens at ``sep`` outside parentheses."""
    parts, depth, current = [], 0, []
    for tok in tokens:
        if tok.is_op("("):
            depth += 1
        elif tok.is_op(")"):
            depth -= 1
        if depth == 0 and tok.is_op(sep):
            parts.append(current)
            current = []
            continue
        current.append(tok)
    parts.append(current)
    return parts


def closing(tokens, start):
    """Index of the ``)`` matching the ``(`` at ``start``."""
    depth = 0
    for i in range(start, len(tokens)):
        if tokens[i].is_op("("):
            depth += 1
        elif tokens[i].is_op(")"):
            depth -= 1
            if depth == 0:
                return i
    raise Untranslatable("unbalanced parentheses")


def quote_pg(name):
    return '"' + name.replace('"', '""') + '"'


# Keywords an expression may hold, as PostgreSQL spells them.
EXPR_WORDS = {"AND", "OR", "NOT", "NULL", "IN", "BETWEEN", "CASE", "WHEN", "THEN", "ELSE", "END",
              "ISNULL", "NOTNULL", "TRUE", "FALSE"}
# SQLite function -> PostgreSQL function, for those whose results agree (on the values the
# column holds once converted): lower/upper fold more than ASCII in PostgreSQL, see docs.
FUNCTIONS = {"lower": "lower", "upper": "upper", "length": "length", "abs": "abs", "trim": "trim",
             "coalesce": "coalesce", "ifnull": "coalesce"}
_OPS = {"=": "=", "==": "=", "!=": "<>", "<>": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">=",
        "+": "+", "-": "-", "*": "*", "||": "||", "(": "(", ")": ")", ",": ","}
# SQLite words whose meaning differs in PostgreSQL or that this module does not translate.
_WHY_WORDS = {"LIKE": "LIKE ignores ASCII case only in SQLite", "GLOB": "GLOB has no PostgreSQL operator",
              "REGEXP": "REGEXP needs an app-defined function", "MATCH": "MATCH is full-text search",
              "COLLATE": "COLLATE inside an expression", "CAST": "CAST follows SQLite's type affinity",
              "SELECT": "a subquery", "EXISTS": "a subquery", "ESCAPE": "LIKE ... ESCAPE",
              "CURRENT_TIMESTAMP": "the clock", "CURRENT_DATE": "the clock", "CURRENT_TIME": "the clock",
              "RAISE": "RAISE()", "WITH": "a common table expression", "OVER": "a window function",
              "WINDOW": "a window function", "VALUES": "a VALUES list", "INDEXED": "INDEXED BY"}
_WHY_OPS = {"/": "'/' divides integers and reals by other rules", "%": "'%' has other rules for reals",
            ".": "qualified names", ";": "more than one statement"}


def translate_expr(tokens, columns, functions=None, words=EXPR_WORDS, ops=None, name_of=None):
    """PostgreSQL text for a SQLite expression.

    ``columns``: lower-cased SQLite column name -> PostgreSQL column name. A name that is
    neither a column nor an allowed keyword or function makes the expression untranslatable
    (SQLite would read an unknown double-quoted name as a string). ``name_of`` may resolve
    other names (views); it returns PostgreSQL text or None.
    """
    functions = FUNCTIONS if functions is None else functions
    ops = _OPS if ops is None else ops
    if not tokens:
        raise Untranslatable("empty expression")
    out = []
    for i, tok in enumerate(tokens):
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if tok.kind == "str":
            if "\x00" in tok.value:
                raise Untranslatable("a NUL character in a literal")
            out.append(tok.text)
        elif tok.kind == "num":
            if tok.text[:2].lower() == "0x":
                raise Untranslatable(f"hexadecimal literal {tok.text}")
            out.append(tok.text)
        elif tok.kind in ("blob", "param"):
            raise Untranslatable(f"{'blob literal' if tok.kind == 'blob' else 'parameter'} {tok.text}")
        elif tok.kind == "op":
            if tok.text not in ops:
                raise Untranslatable(_WHY_OPS.get(tok.text, f"operator {tok.text!r}"))
            out.append(ops[tok.text])
        elif tok.kind == "word" and tok.value == "IS":
            after = tokens[i + 1:i + 3]
            if not (after and (after[0].is_word("NULL") or (len(after) == 2 and after[0].is_word("NOT")
                                                              and after[1].is_word("NULL")))):
                raise Untranslatable("IS between two values (null-safe equality)")
            out.append("IS")
        elif tok.is_word("NOT") and nxt is not None and nxt.is_word("NULL") and i and (
                tokens[i - 1].kind in ("name", "str", "num") or tokens[i - 1].is_op(")")
                or (tokens[i - 1].kind == "word" and tokens[i - 1].value not in words | {"IS"})
                or tokens[i - 1].is_word("END")):
            out.append("IS NOT")   # SQLite's postfix "x NOT NULL"
        elif tok.kind == "word" and tok.value in words:
            out.append(tok.value)
        elif tok.kind == "word" and nxt is not None and nxt.is_op("("):
            fn = tok.text.lower()
            if fn not in functions:
                raise Untranslatable(f"function {tok.text}()")
            out.append(functions[fn])
        elif tok.kind == "word" and tok.value in _WHY_WORDS:
            raise Untranslatable(f"{tok.value}: {_WHY_WORDS[tok.value]}")
        else:   # a name
            pg = columns.get(tok.value.lower()) if tok.kind == "name" else columns.get(tok.text.lower())
            if pg is None and name_of is not None:
                text = name_of(i, tok)
                if text is not None:
                    out.append(text)
                    continue
            if pg is None:
                raise Untranslatable(f"{tok.text} is not a column of the table")
            out.append(quote_pg(pg))
    return join_sql(out)


def join_sql(parts):
    text = ""
    for part in parts:
        if text and not (text.endswith(("(", ".")) or part in (")", ",", ".")
                         or (part == "(" and text[-1].islower())):
            text += " "
        text += part
    return text
