"""Character Card V1/V2/V3 files: read and written as JSON and as PNG (the card in a `tEXt` chunk)."""
