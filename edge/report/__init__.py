"""Engineers' replay report: the annotated video and the self-contained HTML report.

Both are for an engineer's own machine. The video pixelates every detected person
unless a debug mode says otherwise; the HTML report holds movement paths and says
so at its top: it is never sent anywhere.
"""
