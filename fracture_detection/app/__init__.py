"""The desktop app and what a reader sees: the window, the viewer, the worklist, the PDF report and the pictures they share."""
