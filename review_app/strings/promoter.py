"""Strings of issue 15's promoter switch on the Admin page: which satisfaction question goes out."""

from __future__ import annotations

STRINGS = {
    "es": {
        "admin_survey": "Pregunta de satisfacción",
        "admin_promoter": "Preguntar si nos recomendarían (de 0 a 10) en lugar de la satisfacción (de 1 a 5)",
        "admin_promoter_help": "Vale desde la siguiente pregunta: las ya enviadas se leen en su propia escala.",
        "admin_promoter_save": "Guardar pregunta",
        "admin_promoter_now_promoter": "Tras cada respuesta se pregunta: ¿nos recomendaría? (de 0 a 10).",
        "admin_promoter_now_survey": "Tras cada respuesta se pregunta: satisfacción (de 1 a 5).",
        "admin_promoter_from_env": "Aún sin elegir aquí: vale la configuración del despliegue ({variable}).",
    },
    "en": {
        "admin_survey": "Satisfaction question",
        "admin_promoter": "Ask whether they would recommend us (0 to 10) instead of satisfaction (1 to 5)",
        "admin_promoter_help": "Applies from the next question on: those already sent are read on their own scale.",
        "admin_promoter_save": "Save question",
        "admin_promoter_now_promoter": "After each answer we ask: would you recommend us? (0 to 10).",
        "admin_promoter_now_survey": "After each answer we ask: satisfaction (1 to 5).",
        "admin_promoter_from_env": "Not chosen here yet: the deployment's setting holds ({variable}).",
    },
}
