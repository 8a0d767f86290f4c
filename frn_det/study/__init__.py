"""The batch-size study and its analyses, behind the tools/ scripts of the same names: the runs and
their table (batch), the summary of the committed study (summary), the FRN monitor's statistics of
trained models (norm_health), BN's test-time statistics (bn_statistics) and the monitor's cost
(benchmark_monitor)."""
