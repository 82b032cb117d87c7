"""Reading images and data: any X-ray file into model pixels, dataset layouts and splits, fracture boxes, made-up inputs, safe file writes."""
