"""A statement (portfolios/statements.py) written out: CSV, one section per block, and an A4 PDF with fpdf2."""
import csv
import io
from decimal import Decimal

from fpdf import FPDF
from fpdf.fonts import FontFace

from .models import AMOUNT_QUANTUM, LedgerAccount
from .statements import MOVEMENT_COLUMNS, Holding, Movement, Statement

ACCOUNT_LABELS = dict(LedgerAccount.Kind.choices)
STAMP = "%Y-%m-%d %H:%M:%S UTC"


def _amount(value: Decimal | None) -> str:
    """The ledger's scale (4 places) for every figure; an unknown one (a price never traded) is left blank."""
    return "" if value is None else f"{value.quantize(AMOUNT_QUANTUM):f}"


def _when(moment) -> str:
    return moment.strftime(STAMP)


def statement_filename(statement: Statement, extension: str) -> str:
    return f"{statement.brokerage.lower()}-statement-{statement.month}.{extension}"


def _blocks(statement: Statement) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of each block, shared by both renderers so that they always say the same."""
    summary = [["brokerage", statement.brokerage], ["trader", statement.email],
               ["period", f"{statement.month} ({_when(statement.start)} to {_when(statement.end)}, end excluded)"],
               ["currency", statement.currency], ["generated_at", _when(statement.generated_at)]]
    accounts = [[line.kind, line.asset, _amount(line.opening), *(_amount(line.movements[c]) for c in MOVEMENT_COLUMNS),
                 _amount(line.closing)] for line in statement.accounts]

    def holdings(rows: list[Holding]) -> list[list[str]]:
        return [[h.symbol, _amount(h.shares), _amount(h.available), _amount(h.reserved), _amount(h.price),
                 _amount(h.value)] for h in rows]

    def movements(rows: list[Movement]) -> list[list[str]]:
        return [[_when(m.at), m.kind, m.reference, m.account, m.asset, _amount(m.amount), m.memo] for m in rows]

    fills = [[_when(f.at), f.reference, f.symbol, f.side, _amount(f.qty), _amount(f.price), _amount(f.fee),
              _amount(f.cash)] for f in statement.fills]
    holding_header = ["symbol", "shares", "available", "reserved", "price", "value"]
    movement_header = ["at", "type", "reference", "account", "asset", "amount", "memo"]
    return [
        ("statement", ["field", "value"], summary),
        ("balances", ["account", "asset", "opening", *MOVEMENT_COLUMNS, "closing"], accounts),
        ("opening positions", holding_header, holdings(statement.opening_holdings)),
        ("deposits", movement_header, movements(statement.deposits)),
        ("withdrawals", movement_header, movements(statement.withdrawals)),
        ("fills", ["at", "reference", "symbol", "side", "qty", "price", "fee", "cash"], fills),
        ("fees", ["currency", "total"], [[statement.currency, _amount(statement.fees_total)]]),
        ("adjustments", movement_header, movements(statement.adjustments)),
        ("positions at month end", holding_header, holdings(statement.closing_holdings)),
    ]


def statement_csv(statement: Statement) -> str:
    """Each block: a row with its title, a header row, its rows, then an empty row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for title, header, rows in _blocks(statement):
        writer.writerow([title])
        writer.writerow(header)
        writer.writerows(rows)
        writer.writerow([])
    return out.getvalue()


class _StatementPdf(FPDF):
    def __init__(self, statement: Statement):
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.statement = statement
        self.set_margins(14, 14, 14)
        self.set_auto_page_break(auto=True, margin=16)
        self.set_title(_latin(f"{statement.brokerage} statement {statement.month}"))
        self.set_author(statement.brokerage)

    def header(self):
        s = self.statement
        self.set_font("Helvetica", "B", 15)
        self.cell(0, 8, _latin(s.brokerage), new_x="LMARGIN", new_y="NEXT")
        self.set_font("Helvetica", "", 9)
        self.set_text_color(90)
        self.cell(0, 5, _latin(f"Account statement {s.month}  |  {s.email}"), new_x="LMARGIN", new_y="NEXT")
        self.set_text_color(0)
        self.set_draw_color(180)
        self.line(self.l_margin, self.get_y() + 1, self.w - self.r_margin, self.get_y() + 1)
        self.ln(4)

    def footer(self):
        self.set_y(-12)
        self.set_font("Helvetica", "", 8)
        self.set_text_color(110)
        self.cell(0, 5, _latin(f"Generated {_when(self.statement.generated_at)}"), align="L")
        self.set_x(self.l_margin)
        self.cell(0, 5, f"Page {self.page_no()} of {{nb}}", align="R")
        self.set_text_color(0)


def _latin(text: str) -> str:
    """The PDF's core fonts speak Latin-1 only: anything else becomes '?'."""
    return text.encode("latin-1", "replace").decode("latin-1")


def statement_pdf_document(statement: Statement) -> FPDF:
    pdf = _StatementPdf(statement)
    pdf.add_page()
    heading = FontFace(emphasis="BOLD", fill_color=(232, 236, 242))
    for title, header, rows in _blocks(statement):
        if title == "statement":
            header, rows = None, rows[1:]  # the brokerage is the page header already
        pdf.set_font("Helvetica", "B", 11)
        if pdf.will_page_break(22):
            pdf.add_page()
        pdf.cell(0, 7, title.capitalize(), new_x="LMARGIN", new_y="NEXT")
        size = 7 if header is not None and len(header) > 5 else 8
        pdf.set_font("Helvetica", "", size)
        if not rows:
            pdf.set_text_color(110)
            pdf.cell(0, 5, "None in this period.", new_x="LMARGIN", new_y="NEXT")
            pdf.set_text_color(0)
            pdf.ln(3)
            continue
        widths = _widths(title, len(header or rows[0]))
        numeric = {i for i, name in enumerate(header or []) if name in _NUMBER_COLUMNS}
        with pdf.table(col_widths=widths, first_row_as_headings=header is not None, headings_style=heading,
                       line_height=4.6, padding=0.8, borders_layout="HORIZONTAL_LINES") as table:
            for values in ([header] if header else []) + rows:
                row = table.row()
                for i, value in enumerate(values):
                    label = values is header or (header is None and i == 0)
                    row.cell(_latin(value.replace("_", " ") if label else value),
                             align="RIGHT" if i in numeric else "LEFT")
        pdf.ln(4)
    return pdf


_NUMBER_COLUMNS = {"opening", *MOVEMENT_COLUMNS, "closing", "shares", "available", "reserved", "price", "value",
                   "amount", "qty", "fee", "cash", "total"}


def _widths(title: str, count: int) -> tuple[float, ...]:
    if title == "statement":
        return (30, 152)
    if title == "balances":
        return (30, 14, *(18,) * (count - 2))
    if title in ("deposits", "withdrawals", "adjustments"):
        return (32, 22, 26, 28, 12, 24, 38)
    if title == "fills":
        return (32, 24, 16, 12, 22, 26, 22, 28)
    return (1,) * count


def statement_pdf(statement: Statement) -> bytes:
    return bytes(statement_pdf_document(statement).output())
