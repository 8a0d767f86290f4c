"""The batch-size study's summary, behind tools/study_summary.py: the finished runs read from the
study's folders (runs), the study's rules from runs to cells, Table 6's claims and gaps (cells), the markdown
tables (tables), the plots (plots), and summary.md and the README's tables written (report: the
command)."""
