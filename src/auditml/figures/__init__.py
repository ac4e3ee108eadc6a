"""Figures drawn with matplotlib's object API (never ``pyplot``), rendered to PNG or SVG.

A lower layer shared by the audit's callers (:mod:`.audit_figures` draws the ROC plots and
galleries an audit computes, :mod:`auditml.figure_data`) and the reports (the figures of their
pages); the audit itself never draws. Matplotlib is imported with :mod:`.plots`, so import it
where a figure is drawn.
"""
