"""ML and image code: decode, detect, align, blur, pose, pipeline, report. Never imports Tornado."""
