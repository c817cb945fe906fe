"""Small HTML helpers shared by the report's sections."""

import html

CSS = """body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{margin-bottom:.2rem}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}th,td{border:1px solid #ddd;padding:.3rem .5rem;
vertical-align:top;text-align:left}th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
.win{background:#e8f5e9}.regression{background:#ffebee}.sig{font-weight:bold}.verdict{padding:.5rem;background:#f7f7f7;
border-left:4px solid #1f77b4}.flag{border-left-color:#d62728}pre{background:#f7f7f7;padding:.6rem;overflow:auto;
font-size:.8rem}img{max-width:100%;display:block;margin:.5rem 0}td.text{max-width:320px;white-space:pre-wrap;
word-break:break-word}"""


def esc(value) -> str:
    return html.escape(str(value))


def fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return esc(value)


def table(headers: list[str], rows: list[list], row_classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for index, row in enumerate(rows):
        css = f' class="{row_classes[index]}"' if row_classes else ""
        cells = "".join(f'<td class="{"num" if isinstance(c, (int, float)) else "text"}">{fmt(c)}</td>' for c in row)
        body.append(f"<tr{css}>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"
