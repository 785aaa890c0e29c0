"""Hand-written English and Spanish cue lists for the lexicon baseline.

Words are written here the way people type them (with accents); `fold` strips the accents
at import time so that "decepción" and "decepcion" match the same entry, while ñ is kept
apart from n ("año" is not "ano"). A trailing "*" marks a stem matched as a prefix, which
covers Spanish gender and number ("decepcionad*" -> decepcionado, decepcionadas).
Weights are rough strengths on a 0.5-3 scale, chosen by hand, not learnt.
"""

from __future__ import annotations

import re

_FOLD = str.maketrans("áéíóúüàèìòùâêîôûäëïöÁÉÍÓÚÜ’‘´`", "aeiouuaeiouaeiouaeioAEIOUU''''")


def fold(text: str) -> str:
    """Lowercase and strip accents for matching, keeping ñ distinct from n."""
    return text.lower().translate(_FOLD)


def _words(spec: str) -> list[str]:
    """Split a prose word list (kept as a triple-quoted string so it stays readable)."""
    return spec.split()


def _weights(spec: str) -> dict[str, float]:
    """Parse "word:weight word2:weight" (weight defaults to 1) into a folded dict."""
    out: dict[str, float] = {}
    for item in spec.split():
        word, _, weight = item.partition(":")
        out[fold(word).replace("_", " ")] = float(weight) if weight else 1.0
    return out


NEGATIVE = _weights(
    """
    bad:1.5 terrible:2.5 awful:2.5 horrible:2.5 worst:2.5 poor:1.5 broken:2 broke:1.5 useless:2
    disappointed:2 disappointing:2 disappointment:2 sad:1.5 upset:2 annoyed:2 annoying:2 angry:2
    hate:2.5 hated:2 sucks:2 suck:1.5 crap:2 shit:2 shitty:2.5 garbage:2 trash:2 joke:1 fail:1.5
    failed:1.5 failure:1.5 problem:1 problems:1 issue:0.8 issues:0.8 error:1 errors:1 bug:1 bugs:1
    wrong:1.5 late:1 delayed:1.5 delay:1 missing:1.5 lost:1 damaged:2 defective:2 faulty:2
    cancelled:1 canceled:1 overcharged:2 charged:0.8 unacceptable:2.5 ridiculous:2 pathetic:2.5
    frustrating:2 frustrated:2 frustration:2 rude:2 slow:1 crashes:1.5 crashed:1.5 crash:1.5
    stuck:1.2 unable:1.2 nightmare:2 disgusting:2.5 disgusted:2.5 scam:2.5 fraud:2 complaint:1.5
    worse:2 sick:1 tired:1 hell:1.5 fuck:2 fucked:2 sadly:1.5 tragedy:2 died:1.5 dies:1.5 death:1.5
    concerned:1 crazy:1 stupid:2 dumb:1.5 boring:1.5 unfair:1.5 worried:1.2 scared:1.5 ugly:1.5
    sorry:0.5 unfortunately:1 nothappy:2 wtf:2
    mal:1.5 malo:2 mala:2 malos:2 malas:2 pésimo:2.5 pésima:2.5 peor:2.5 horrible:2.5 terrible:2.5
    fatal:2 basura:2 porquería:2.5 mierda:2 asco:2.5 asqueroso:2.5 decepcion*:2 decepcionad*:2
    triste:1.5 molest*:1.5 enojad*:2 enfadad*:2 harto:2 harta:2 hartos:2 hartas:2 odio:2.5
    problema:1 problemas:1 error:1 errores:1 falla:1.5 fallas:1.5 fallo:1.5 roto:2 rota:2
    dañado:2 dañada:2 defectuos*:2 tarde:0.8 retraso:1.5 retrasad*:1.5 demora:1.5 perdido:1
    perdida:1 cobro:0.8 cobraron:1 cancelaron:1.2 inaceptable:2.5 ridícul*:2 vergüenza:2
    lament*:1 lamentablemente:1 desastre:2.5 robo:2 estafa:2.5 ladrones:2.5 inútil:2 inútiles:2
    lento:1 lenta:1 queja:1.5 frustrante:2 lastima:1.5 pena:1 aburrid*:1.5 peligro:1.5 insult*:1.5
    muerte:1.5 murio:1.5 irrespetuos*:2 joder:1.5 cojones:1.5 rompio:1.5 miedo:1.5 injust*:1.5
    preocupad*:1.2 estupid*:2 feo:1.5 fea:1.5  reclamo:1.5 reclamación:1.5 grave:1 fatal:2 pesadilla:2
    """
)

POSITIVE = _weights(
    """
    good:1.5 great:2 excellent:2.5 amazing:2.5 awesome:2.5 love:2.5 loved:2.5 loving:2 like:0.7
    best:2 perfect:2.5 happy:2 glad:1.5 thanks:1.5 thank:1.5 thx:1.2 ty:1 appreciate:2 helpful:2
    nice:1.5 fantastic:2.5 wonderful:2.5 brilliant:2 fast:1 quick:1 easy:1 beautiful:2 cool:1.2
    fixed:1.2 solved:1.5 resolved:1.5 works:0.8 recommend:2 pleased:2 impressed:2 enjoy:1.5
    enjoyed:1.5 fun:1.5 excited:2 favorite:1.5 favourite:1.5 win:1 congrats:2 lol:0.5 yay:2
    bien:1.2 bueno:1.5 buena:1.5 buenos:1.5 buenas:1 excelente:2.5 genial:2.5 increíble:2
    encanta:2.5 encantó:2.5 encantad*:2 amo:2 gusta:1.5 gustó:1.5 gracias:1.5 feliz:2 felices:2
    perfecto:2.5 perfecta:2.5 mejor:1.5 rápido:1 rápida:1 fácil:1 hermos*:2 bonit*:1.5
    maravillos*:2.5 recomiendo:2 agradecid*:2 agradezco:2 amable:2 amables:2 resuelto:1.5
    solucionado:1.5 funciona:0.8 contento:2 contenta:2 contentos:2 satisfech*:2 jaja*:0.8 super:1
    chido:1.5 bacán:1.5 guay:1.5 divertid*:1.5 lindo:1.5 linda:1.5 mil_gracias:2.5
    """
)

# Emoji are matched in the raw text; weights are (negative, positive) contributions.
# The ASCII emoticons come last: the scorer skips the others for pure-ASCII posts.
EMOJI: dict[str, tuple[float, float]] = {
    "😡": (2.5, 0.0),
    "🤬": (3.0, 0.0),
    "😠": (2.0, 0.0),
    "😤": (1.5, 0.0),
    "😢": (1.5, 0.0),
    "😭": (1.5, 0.0),
    "😞": (1.5, 0.0),
    "😔": (1.2, 0.0),
    "😒": (1.2, 0.0),
    "🙄": (1.2, 0.0),
    "👎": (2.0, 0.0),
    "💩": (1.5, 0.0),
    "😍": (0.0, 2.5),
    "🥰": (0.0, 2.5),
    "❤": (0.0, 2.0),
    "😊": (0.0, 1.5),
    "😀": (0.0, 1.5),
    "😁": (0.0, 1.5),
    "😂": (0.0, 0.8),
    "🙏": (0.0, 1.0),
    "👍": (0.0, 1.5),
    "👏": (0.0, 1.5),
    "🎉": (0.0, 1.5),
    ":)": (0.0, 1.2),
    ":-)": (0.0, 1.2),
    ":(": (1.2, 0.0),
    ":-(": (1.2, 0.0),
}
ANGRY_EMOJI = frozenset("😡🤬😠😤")

# Negators open a scope of a few words in which sentiment flips; Spanish negative concord
# ("no funciona nunca") means a second negator extends the scope instead of cancelling it.
NEGATORS = frozenset(
    fold(w)
    for w in _words(
        """
    not no never nor none nobody nothing neither without dont don't doesnt doesn't didnt didn't
    cant can't cannot wont won't isnt isn't arent aren't wasnt wasn't werent weren't havent
    haven't hasnt hasn't hadnt hadn't wouldnt wouldn't couldnt couldn't shouldnt shouldn't aint
    ain't nunca ni nada nadie ningún ninguno ninguna jamás tampoco sin
    """
    )
)

INTENSIFIERS = _weights(
    """
    very:1.5 really:1.4 so:1.3 extremely:1.8 totally:1.5 absolutely:1.6 completely:1.5 super:1.5
    too:1.3 such:1.3 incredibly:1.7 fucking:1.8 freaking:1.5 most:1.3 muy:1.5 súper:1.5 tan:1.4
    demasiado:1.5 totalmente:1.5 completamente:1.5 realmente:1.4 bastante:1.2 re:1.3
    sumamente:1.7 tremendo:1.5 tremenda:1.5
    """
)

# Anger is a subset of negativity that raises urgency; these words also count as negative.
ANGER = _weights(
    """
    ridiculous:2 unacceptable:2.5 furious:3 pissed:2.5 livid:3 outraged:3 outrageous:2.5
    disgusting:2.5 pathetic:2.5 useless:2 worst:2 scam:2.5 ripoff:2.5 wtf:2 hate:2 angry:2.5
    incompetent:2.5 idiots:2.5 shameful:2.5 disgrace:2.5 joke:1.2 sick_of:2 fed_up:2.5
    ridícul*:2 inaceptable:2.5 indignante:2.5 indignad*:2.5 vergüenza:2 sinvergüenza*:3
    estafa:2.5 estafador*:3 ladrones:3 pésimo:2 pésima:2 basura:2 harto:2.5 harta:2.5
    furios*:3 enojad*:2 encabronad*:3 emputad*:3 cabrones:3 incompetentes:2.5 asco:2
    """
)

# Multi-word anger idioms matched on the folded text.
ANGER_PHRASES = re.compile(
    r"\b(?:sick of|fed up|what a joke|rip ?off|hasta la madre|hasta el gorro|que asco|"
    r"una burla|son unos)\b"
)

# Complaint cues: phrases that describe something the company owes or got wrong.
# (pattern, weight, label for the reasons).
COMPLAINT_CUES: list[tuple[str, float, str]] = [
    (r"refund(?:ed)?|money back|chargeback", 2.0, "refund"),
    (r"still (?:waiting|not|no|haven'?t|hasn'?t|can'?t|broken)", 2.0, "still waiting"),
    (r"(?:haven'?t|hasn'?t|have not|has not|didn'?t|did not|never) (?:received|arrived|got|come)", 2.0, "not received"),
    (r"(?:not|isn'?t|doesn'?t|won'?t|stopped|never) work(?:ing|s|ed)?", 2.0, "not working"),
    (r"(?:no|cannot|can'?t|unable to) (?:log ?in|login|sign in|access|connect|load)", 1.5, "cannot access"),
    (r"charged (?:twice|2x|double|me)|double charged|overcharg\w*|billed twice", 2.0, "wrong charge"),
    (
        r"customer service|customer care|no (?:reply|response|answer)|nobody (?:answers|replies)|"
        r"on hold|hung up",
        1.2,
        "service failure",
    ),
    (r"cancel (?:my|the)|cancell?ing my|want to cancel", 1.2, "cancellation"),
    (r"wrong (?:item|order|size|product)|damaged|defective|faulty|broke|broken|missing", 1.5, "faulty product"),
    (
        r"(?:days|weeks|months|hours) (?:ago|later|now)|for (?:\d+|two|three|several) (?:days|weeks|months)",
        1.2,
        "long wait",
    ),
    (
        r"(?:what|where) is (?:the problem|my order|my refund)|why (?:is|are|does|did|do|can'?t|won'?t)",
        1.0,
        "why question",
    ),
    (r"warranty|compensation|complain\w*|escalate", 1.2, "complaint words"),
    (r"reembols\w*|devol(?:ucion|ver) (?:de )?(?:mi )?dinero|me devuelvan", 2.0, "reembolso"),
    (
        r"no (?:me )?(?:funciona|sirve|anda|carga|llega|llego|abre|deja)|dejo de funcionar|"
        r"sigue sin|sin servicio|sin internet|sin señal",
        2.0,
        "no funciona",
    ),
    (
        r"llevo (?:\d+|dos|tres|cuatro|cinco|varios|varias|muchos|muchas) (?:dias|semanas|meses|horas)|"
        r"hace (?:\d+|dos|tres|varios|varias) (?:dias|semanas|meses)",
        2.0,
        "llevo X días",
    ),
    (
        r"todavia no|aun no|sigo esperando|nadie (?:me )?(?:responde|contesta|atiende)|"
        r"no (?:me )?(?:responden|contestan|atienden)",
        2.0,
        "sigo esperando",
    ),
    (r"me cobraron|cobro (?:doble|indebido)|cargo (?:doble|no reconocido)|cobrado de mas", 2.0, "cobro indebido"),
    (r"queja|reclam\w*|atencion al cliente|servicio al cliente|garantia|cancelar mi|dar de baja", 1.2, "queja"),
    (
        r"pedido (?:equivocado|incompleto)|producto (?:dañado|defectuoso|roto)|llego (?:roto|dañado|mal)",
        1.5,
        "producto dañado",
    ),
]

QUESTION_START = re.compile(
    r"^(?:how|why|when|where|what|who|which|can you|could you|will you|is there|are you|do you|does|"
    r"como|cuando|donde|por que|que|cual|quien|pueden|podrian|me pueden|hay)\b"
)

# Crisis lane: posts a human must see now, whatever their sentiment score says.
# Patterns are anchored at a word start by the scorer, so they do not begin with \b.
CRISIS: dict[str, str] = {
    # Threats of violence and physical danger. Tuned (2026-12-06) on the "tune" half of
    # classifier/eval/crisis_labels.tsv only: "shoot the" no longer matches inside "shoot them", wishes to
    # hurt someone ("wanna kill you") and feeling threatened count, and so do hazards a customer reports
    # ("could go on fire", "fire hazard", "dangerous wiring").
    "safety threat": (
        r"(?:i(?:'ll| will| am going to|'m going to|m gonna|'m gonna) (?:kill|hurt|shoot|stab|find) "
        r"(?:you|someone|everyone|them)|(?:i )?(?:wanna|want to|gonna) (?:kill|hurt|shoot|stab) (?:you|u)\b|"
        r"bomb (?:threat|your)|shoot (?:up|the)\b|(?:felt|feel|was|were|am|are) threatened|threatened (?:me|us)|"
        r"(?:gas leak|caught fire|exploded|explosion|electrocuted|"
        r"sliced my|cut my (?:mouth|hand)|burned my|glass in|"
        r"(?:go|goes|went|going|catch|catches|caught) on fire|(?:could|might|will|may) catch fire|"
        r"fire hazard|safety (?:hazard|risk)|burning (?:smell|air|unit)|smoke (?:coming|pouring)|"
        r"dangerous (?:lean|wires?|wiring|conditions?|smell|fumes|gas|brakes?|hole|stairs?)|almost (?:die|died|killed)|"
        r"(?:los|te|les|os) voy a (?:matar|golpear|partir)|amenaza de bomba|fuga de gas|se incendio|"
        r"me (?:amenazo|amenazaron|amenazan|estan amenazando)|riesgo de (?:incendio|explosion)|"
        r"exploto|me corte|vidrio en))"
    ),
    # Harm to someone's health from what we sold or did: the posts a brand must never leave waiting.
    # (Tuned: being in hospital or falling ill is no longer enough by itself; the harm must come from
    # something, or be named as a hazard.)
    "health risk": (
        r"(?:food poisoning|poisoned|allergic reaction|anaphyla\w*|(?:got|made (?:me|us|him|her|my \w+)) sick "
        r"(?:from|after)|(?:ended up|landed|rushed|went) (?:in|to) (?:the )?(?:er|emergency room|a&e|hospital)\b "
        r"(?:after|because|from)|health hazard|mold infested|moldy|salmonella|listeria|"
        r"intoxicacion alimentaria|intoxicad[oa]s? (?:con|por|tras|despues)|intoxique|intoxico|intoxicaron|"
        r"envenen\w+ (?:con|por)|reaccion alergica|riesgo para la salud|"
        r"(?:acabe|acabo|termine|termino|terminamos) en (?:el )?hospital|hospitalizad[oa]s? (?:por|tras)|"
        r"me (?:enferme|puso malo|puso mala|hizo dano) (?:con|por|despues|al|tras))\b"
    ),
    # (Tuned: the bare stem "suicid-" matched suicide attacks, "economic suicide" and bands. "Me quiero morir"
    # is mostly hyperbole in the tune half, but it stays: recall comes first here, and a person dismisses a
    # hyperbole in a second.)
    "self-harm": (
        r"(?:kill myself|killing myself|end my life|want to die|wanna die|self[- ]harm|suicidal|"
        r"hurt myself|no reason to live|me quiero morir|quiero morirme|me voy a matar|me quiero matar|matarme|"
        r"me suicido|me suicide|"
        r"quitarme la vida|suicidarme|me voy a suicidar|no quiero vivir|acabar con mi vida|"
        r"para (?:que|q) vivo|no tengo (?:razones|motivos) para vivir)\b"
    ),
    # (Tuned: a lawyer, an attorney or a court named in passing is not a threat; a threat, or a regulator
    # the customer went to, is.)
    "legal threat": (
        r"(?:(?:sue|suing|sued) (?:you|your|u|them|the)|i(?:'ll| will| am going to|'m going to) sue|lawsuit|"
        r"class action|legal action|take you to court|see you in court|small claims|"
        r"(?:my|our|a|an) (?:lawyer|attorney)s?(?! general)|(?:involve|involving|contact|contacting|call|calling) "
        r"(?:my |our |an? )?(?:lawyers?|attorneys?)|"
        r"(?:contacted|reported (?:you|this|it) to|complaint (?:with|to)|file a complaint with) (?:the )?"
        r"(?:ftc|fcc|bbb|cfpb|better business bureau|attorney general|ombudsman|trading standards)|"
        r"denunci(?:are|aremos|arlos|arlas|arte|arles|aros)|"
        r"(?:poner|pondre|interponer) una denuncia|(?:voy|vamos) a denunciar|"
        r"demandar\w*|los voy a demandar|(?:mi|nuestro|un) abogad[oa]|accion(?:es)? legal(?:es)?|profeco|"
        r"oficina del consumidor|nos vemos en (?:el )?juzgado|(?:a|en los) tribunales)\b"
    ),
    # (Tuned: being scammed, asking whether something is a scam, and fraudulent purchases count.)
    "data breach": (
        r"(?:hacked|hacker\w*|hackead[oa]|hackearon|me robaron (?:la|mi) cuenta|data (?:leak|breach)|"
        r"leaked|breach|identity theft|stolen (?:card|identity|account)|unauthori[sz]ed (?:charge|access|"
        r"transaction|purchase)|fraudulent (?:charge|transaction|purchase)s?|phishing|"
        r"(?<!almost )(?:been|got|was|were|get) scammed|(?:is|was) (?:this|it) a scam|"
        r"(?:if|whether) (?:this|it) is a scam|fraud account|"
        r"filtracion|filtraron|filtrad[oa]s?|"
        r"robo de (?:identidad|datos)|suplantacion|cargos? no reconocidos?|"
        r"(?:clonaron|clonado|clonada) (?:mi |la )?tarjeta|"
        r"le clonaron|me clonaron|me estafaron)\b"
    ),
    "mass outage": (
        r"(?:(?:whole|entire) (?:city|town|neighbou?rhood|area|region|country|state|street|building)|"
        r"(?:everyone|everybody|nobody|no one) (?:in|here|can|is|has)|thousands (?:of|without)|"
        r"nationwide|massive outage|widespread|blackout|"
        r"toda la (?:ciudad|colonia|zona|region|calle)|todo el (?:barrio|pueblo|pais|edificio|estado)|"
        r"nadie (?:puede|tiene)|miles (?:de|sin)|caida (?:masiva|general)|apagon)\b"
    ),
}
# A mass-outage scale phrase only counts together with an outage word, so that
# "everyone in the office loves it" stays out of the crisis lane.
OUTAGE_WORDS = re.compile(
    r"\b(?:outage|down|no power|without power|no service|no internet|no signal|offline|not working|"
    r"blackout|sin luz|sin servicio|sin internet|sin señal|sin agua|caid[oa]|no funciona|apagon)\b"
)
