"""The children's social care adapter's lookup: earlier contacts and referrals, open cases,
child protection plans and the allocated social worker or lead professional."""

from adapters.social_care.agency import SocialCareAgency

__all__ = ["SocialCareAgency"]
