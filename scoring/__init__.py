"""Scoring: rates per unit and period, two-way evaluation (县乡履职双向考核评价), grid-worker scores and bulletins."""
