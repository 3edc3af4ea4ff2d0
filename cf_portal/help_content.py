"""The portal's help texts, in one place: the Help panel of each screen and the hints under the fields where
people hesitate. Plain data (no Reflex): the pages render it, the feedback service checks page keys against it.

Written from the customers' help article on license management, in the app's own words and terms (Add License,
Create, Employees, coupon code, payment method)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HelpSection:
    heading: str
    paragraphs: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()  # an ordered list, shown after the paragraphs


@dataclass(frozen=True)
class HelpTopic:
    page: str  # the key stored with feedback
    title: str
    summary: str
    sections: tuple[HelpSection, ...]


TWO_STEPS = HelpSection(
    "Two steps: buy, then assign",
    paragraphs=("Licenses decide who in your company may use each ChatFortress product. Getting one to a person "
                "takes two steps:",),
    steps=("Buy the licenses with Add License. They are added to your account, billed monthly.",
           "Assign them to employees or child accounts in Employees. Until then nobody can use them."),
)

ADD_LICENSE = HelpTopic(
    page="add_license",
    title="Help: Add License",
    summary="This screen buys licenses for your account. You need a payment method to finish; if there is none, "
            "the Payment section asks you to add one.",
    sections=(
        TWO_STEPS,
        HelpSection(
            "What each part means",
            steps=(
                "License name: a name for your own reference, such as a department or a person. It appears in your "
                "list of licenses and on your invoices; nobody else sees it.",
                "Product and plan: the ChatFortress product you want and its tier. Each plan has its own monthly "
                "price for one license.",
                "Number of licenses: how many people or child accounts can hold this license at once. The price of "
                "each license and the total are shown, so you know what you agree to pay.",
                "Coupon code: optional. It is checked as soon as you type it, and the price shows the discount and "
                "how long it lasts.",
                "Payment: choose one of your saved payment methods, or add a new one.",
                "Create: charges the first month and adds the license to your account. If the payment fails, "
                "nothing is created and the screen says why.",
            ),
        ),
        HelpSection(
            "After Create",
            paragraphs=("Open Employees to assign the new licenses. Every license renews each month until you "
                        "cancel it from Manage on the Licenses page.",),
        ),
    ),
)

EMPLOYEES = HelpTopic(
    page="employees",
    title="Help: Employees",
    summary="This screen is the second step: it gives the licenses you bought to the people and child accounts "
            "who should use them.",
    sections=(
        TWO_STEPS,
        HelpSection(
            "Who can hold a license",
            paragraphs=("An employee is a person in your company. A child account is a department, subsidiary or "
                        "client business of yours; it holds a license as a whole.",),
        ),
        HelpSection(
            "Assign, move and unassign",
            paragraphs=("Assign is on each row (or select several rows first). Move and Unassign are in a "
                        "person's details: select their name. A license can never be held by more people than the "
                        "number you bought.",),
            steps=(
                "Assign: gives one license to an employee or child account, if the license has one available.",
                "Move: passes a license from its holder to someone else in one step; the history keeps both.",
                "Unassign: frees the license so you can give it to someone else. You keep paying for it until you "
                "lower the number of licenses with Manage on the Licenses page.",
            ),
        ),
        HelpSection(
            "Finding people",
            paragraphs=("Search by name or email, filter by department or product, or show only those without a "
                        "license. Import CSV adds many employees at once; Export CSV downloads the list.",),
        ),
    ),
)

LICENSES = HelpTopic(
    page="licenses",
    title="Help: Licenses",
    summary="This screen lists what your account bought: each license, how many are assigned and available, and "
            "what it costs each month.",
    sections=(
        TWO_STEPS,
        HelpSection(
            "What you can do here",
            steps=(
                "Add License: buy licenses for another product or plan, or for another team.",
                "Manage: add or remove licenses, change the plan or the payment method, cancel or resume.",
                "Assign: opens Employees, where you give the licenses to people and child accounts.",
                "History: every assignment of the license, newest first.",
            ),
        ),
        HelpSection(
            "Billing",
            paragraphs=("All licenses are billed monthly. The reference name you chose appears on each invoice; "
                        "invoices are on the Billing page.",),
        ),
    ),
)

TOPICS: dict[str, HelpTopic] = {topic.page: topic for topic in (ADD_LICENSE, EMPLOYEES, LICENSES)}

# Hints under the fields where people hesitate (Add License).
REFERENCE_NAME_HINT = "For your own reference, like a team or a person: shown in your licenses list and on invoices."
COUPON_HINT = "Optional. The code is checked as you type and the price below shows the discount."
PAYMENT_HINT = "Create charges the first month to this payment method; later months renew on it."

FEEDBACK_QUESTION = "Did this answer your question?"
FEEDBACK_THANKS = "Thanks for your feedback"
