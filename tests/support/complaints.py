"""A set of complaints a support team tells apart at a glance, for the complaint-theme tests."""

from __future__ import annotations

# Written for these tests: three complaints a support team tells apart at a glance, in both languages, worded apart.
COMPLAINTS = {
    "delivery": [
        ("es", "El pedido 4471 sigue sin llegar y el seguimiento no se actualiza desde el lunes"),
        ("es", "Mi paquete lleva diez días en reparto y nadie sabe dónde está"),
        ("es", "El envío iba a llegar el martes y todavía no tengo nada en casa"),
        ("es", "La empresa de mensajería dice que entregó el paquete pero aquí no llegó"),
        ("en", "My order has been stuck in processing for a week, what is going on?"),
        ("en", "Package still not delivered, tracking hasn't moved in 5 days"),
        ("en", "The courier marked my parcel as delivered but it never arrived"),
        ("en", "Delivery was promised for Monday and the parcel is still not here"),
    ],
    "refund": [
        ("es", "Me cobraron dos veces la misma factura, necesito el reembolso ya"),
        ("es", "Devolví el producto hace un mes y todavía no me han devuelto el dinero"),
        ("es", "Quiero que me devuelvan el dinero, el cargo en la tarjeta no es mío"),
        ("es", "Pedí el reembolso hace tres semanas y sigo esperando la devolución"),
        ("en", "Charged twice for the same subscription. Please refund me."),
        ("en", "Still waiting for my refund three weeks after returning the item"),
        ("en", "Where is my money back? The return was accepted ages ago"),
        ("en", "You took the payment twice from my card, I want a refund now"),
    ],
    "account": [
        ("es", "No puedo entrar a mi cuenta, dice contraseña incorrecta pero la acabo de cambiar"),
        ("es", "Me bloquearon la cuenta y no puedo iniciar sesión"),
        ("es", "No me llega el código de verificación para entrar en la cuenta"),
        ("es", "Restablecí la contraseña tres veces y la app sigue sin dejarme entrar"),
        ("en", "How do I reset my password? The email never arrives."),
        ("en", "Locked out of my account, the login code never comes"),
        ("en", "Can't log in since the update, it says my account doesn't exist"),
        ("en", "My password reset link expired twice and I still cannot sign in"),
    ],
}


# Chatter the classifier can score as a complaint (from the demo's seed): it belongs to no theme.
CHATTER = [
    ("en", "Last tweet of the night, reading will not lose to spurs tomorrow"),
    ("en", "okay i'm sorry but TAYLOR SWIFT LOOKS NOTHING LIKE JACKIE O SO STOP COMPARING THE TWO"),
    ("es", "Mi móvil no me deja abrir los grupos y tengo unos 600 mensajes así de regalo"),
]
