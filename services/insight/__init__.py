"""Insight (未诉先办): finds rising, recurring and persistent problems in the appeals before anyone complains again."""
