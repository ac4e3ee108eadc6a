"""Figures drawn with matplotlib's object API (never ``pyplot``), rendered to PNG or SVG.

A lower layer shared by the audit (the ROC plots, galleries and inversion gallery it writes into
the run directory) and the reports (the figures of their pages): neither imports the other for
them. Matplotlib is imported with these modules, so import them where a figure is drawn.
"""
