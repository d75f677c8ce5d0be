"""Report stage: the template context, the single-file HTML report and the exports."""
