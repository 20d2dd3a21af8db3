"""A made-up person on the bundled portrait: hair 2.2 IOD wide and 2.0 IOD tall around the face, a body below."""

from __future__ import annotations

import cv2
import numpy as np

from src.core.face_mesh import FACE_OVAL, interocular


def wide_hair_person(image: np.ndarray, lm: np.ndarray, centre_dv: float, paint_arc: tuple[int, int] = (180, 360)
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(image with the hair painted over `paint_arc` degrees, hard person mask, face centre, IOD). The hair's
    ellipse is centred `centre_dv` IOD below the face centre; the body is everything 2.6 IOD below it."""
    img = image.copy()
    size = img.shape[0]
    iod = interocular(lm)
    c = lm[FACE_OVAL, :2].mean(axis=0)
    centre, axes = (int(c[0]), int(c[1] + centre_dv * iod)), (int(2.2 * iod), int(2.0 * iod))
    person = np.zeros((size, size), np.float32)
    cv2.ellipse(person, centre, axes, 0, 0, 360, 1.0, -1)
    cv2.rectangle(person, (0, int(c[1] + 2.6 * iod)), (size - 1, size - 1), 1.0, -1)  # shoulders
    cv2.ellipse(img, centre, axes, 0, paint_arc[0], paint_arc[1], (30, 60, 120), -1)
    return img, person, c, iod
